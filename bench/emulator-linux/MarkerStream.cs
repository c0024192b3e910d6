using System.Diagnostics;
using System.Text;

namespace SharpVisor.Bench.EmulatorLinux;

/// <summary>Passes console output through and notes when given marker lines first appear (INIT-START, GUEST-READY).</summary>
internal sealed class MarkerStream : Stream
{
    private readonly Stream _inner;
    private readonly Stopwatch _clock;
    private readonly string[] _markers;
    private readonly StringBuilder _line = new();

    public MarkerStream(Stream inner, Stopwatch clock, params string[] markers)
    {
        _inner = inner;
        _clock = clock;
        _markers = markers;
    }

    /// <summary>Marker → seconds since the clock started, for those seen.</summary>
    public Dictionary<string, double> Seen { get; } = new();

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
        _inner.Write(buffer);
        foreach (byte b in buffer)
        {
            if (b != '\n')
            {
                _line.Append((char)b);
                continue;
            }

            string line = _line.ToString();
            _line.Clear();
            foreach (string marker in _markers)
            {
                if (line.Contains(marker, StringComparison.Ordinal) && !Seen.ContainsKey(marker))
                {
                    Seen[marker] = _clock.Elapsed.TotalSeconds;
                }
            }
        }
    }

    public override void Flush() => _inner.Flush();

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
