namespace SharpVisor.Host.Console;

/// <summary>The most recent bytes of a console, so a late attacher sees the boot log. Not thread-safe.</summary>
public sealed class ConsoleRing
{
    private readonly byte[] _buffer;
    private int _start;
    private int _count;

    public ConsoleRing(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        _buffer = new byte[capacity];
    }

    public int Capacity => _buffer.Length;

    public int Count => _count;

    public void Append(ReadOnlySpan<byte> data)
    {
        if (data.Length >= _buffer.Length)
        {
            data[^_buffer.Length..].CopyTo(_buffer);
            _start = 0;
            _count = _buffer.Length;
            return;
        }

        int end = (_start + _count) % _buffer.Length;
        int first = Math.Min(data.Length, _buffer.Length - end);
        data[..first].CopyTo(_buffer.AsSpan(end));
        data[first..].CopyTo(_buffer);
        int overflow = _count + data.Length - _buffer.Length;
        if (overflow > 0)
        {
            _start = (_start + overflow) % _buffer.Length;
            _count = _buffer.Length;
        }
        else
        {
            _count += data.Length;
        }
    }

    public byte[] ToArray()
    {
        byte[] result = new byte[_count];
        int first = Math.Min(_count, _buffer.Length - _start);
        _buffer.AsSpan(_start, first).CopyTo(result);
        _buffer.AsSpan(0, _count - first).CopyTo(result.AsSpan(first));
        return result;
    }
}
