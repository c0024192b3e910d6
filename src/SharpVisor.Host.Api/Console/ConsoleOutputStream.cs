namespace SharpVisor.Host.Console;

/// <summary>The write-only stream a UART writes its output to; everything goes to the broadcaster.</summary>
internal sealed class ConsoleOutputStream : Stream
{
    private readonly ConsoleBroadcaster _console;

    public ConsoleOutputStream(ConsoleBroadcaster console)
    {
        _console = console;
    }

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override void Write(byte[] buffer, int offset, int count) => _console.Publish(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer) => _console.Publish(buffer);

    public override void WriteByte(byte value) => _console.Publish([value]);

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
