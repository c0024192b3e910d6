namespace SharpVisor.Host.Vmm;

/// <summary>A write-only pass-through that counts bytes, so progress reports can tell whether the guest is talking.</summary>
public sealed class CountingStream : Stream
{
    private readonly Stream? _inner;
    private long _written;

    public CountingStream(Stream? inner)
    {
        _inner = inner;
    }

    public long BytesWritten => Interlocked.Read(ref _written);

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        Interlocked.Add(ref _written, buffer.Length);
        _inner?.Write(buffer);
    }

    public override void Flush() => _inner?.Flush();

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
