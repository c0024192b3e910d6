using SharpVisor.Machine.Snapshots;
namespace SharpVisor.Devices.Legacy;

/// <summary>A fixed-capacity FIFO of bytes (a ring buffer): a UART receive FIFO or a host input queue.</summary>
internal sealed class ByteQueue
{
    private readonly byte[] _buffer;
    private int _head;
    private int _count;

    public ByteQueue(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _buffer = new byte[capacity];
    }

    public int Capacity => _buffer.Length;

    public int Count => _count;

    public bool IsEmpty => _count == 0;

    public bool IsFull => _count == _buffer.Length;

    public bool TryEnqueue(byte value)
    {
        if (IsFull)
        {
            return false;
        }

        _buffer[(_head + _count) % _buffer.Length] = value;
        _count++;
        return true;
    }

    public bool TryDequeue(out byte value)
    {
        if (_count == 0)
        {
            value = 0;
            return false;
        }

        value = _buffer[_head];
        _head = (_head + 1) % _buffer.Length;
        _count--;
        return true;
    }

    public void Clear()
    {
        _head = 0;
        _count = 0;
    }

    public void Save(SnapshotWriter w)
    {
        var bytes = new byte[_count];
        for (int i = 0; i < _count; i++)
        {
            bytes[i] = _buffer[(_head + i) % _buffer.Length];
        }

        w.WriteBytes(bytes);
    }

    public void Load(SnapshotReader r)
    {
        byte[] bytes = r.ReadBytes();
        if (bytes.Length > _buffer.Length)
        {
            throw r.Invalid($"{bytes.Length} bytes queued in a queue of {_buffer.Length}");
        }

        Clear();
        foreach (byte b in bytes)
        {
            TryEnqueue(b);
        }
    }
}
