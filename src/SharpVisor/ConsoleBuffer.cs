namespace SharpVisor;

/// <summary>
/// The guest console's output on its way to the embedder: bounded (the oldest bytes go first, so
/// a reader that never reads cannot stall the guest's vCPU), with a reader that waits for data
/// and sees the end once the machine has stopped and the buffer is drained.
/// </summary>
internal sealed class ConsoleBuffer
{
    private readonly object _lock = new();
    private readonly byte[] _ring;
    private int _start;
    private int _count;
    private bool _completed;
    private TaskCompletionSource? _waiter;

    public ConsoleBuffer(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _ring = new byte[capacity];
    }

    /// <summary>Bytes dropped because the reader was too far behind.</summary>
    public long DroppedBytes { get; private set; }

    public void Append(ReadOnlySpan<byte> data)
    {
        TaskCompletionSource? waiter;
        lock (_lock)
        {
            if (data.Length > _ring.Length)
            {
                DroppedBytes += data.Length - _ring.Length;
                data = data[^_ring.Length..];
            }

            int overflow = _count + data.Length - _ring.Length;
            if (overflow > 0)
            {
                _start = (_start + overflow) % _ring.Length;
                _count -= overflow;
                DroppedBytes += overflow;
            }

            int tail = (_start + _count) % _ring.Length;
            int first = Math.Min(data.Length, _ring.Length - tail);
            data[..first].CopyTo(_ring.AsSpan(tail));
            data[first..].CopyTo(_ring);
            _count += data.Length;
            waiter = TakeWaiter();
        }

        waiter?.TrySetResult();
    }

    /// <summary>No more output will come: readers get what is left, then 0.</summary>
    public void Complete()
    {
        TaskCompletionSource? waiter;
        lock (_lock)
        {
            _completed = true;
            waiter = TakeWaiter();
        }

        waiter?.TrySetResult();
    }

    public async ValueTask<int> ReadAsync(Memory<byte> destination, CancellationToken cancellationToken)
    {
        if (destination.IsEmpty)
        {
            return 0;
        }

        while (true)
        {
            Task wait;
            lock (_lock)
            {
                if (_count > 0)
                {
                    return Take(destination.Span);
                }

                if (_completed)
                {
                    return 0;
                }

                _waiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                wait = _waiter.Task;
            }

            await wait.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private int Take(Span<byte> destination)
    {
        int length = Math.Min(destination.Length, _count);
        int first = Math.Min(length, _ring.Length - _start);
        _ring.AsSpan(_start, first).CopyTo(destination);
        _ring.AsSpan(0, length - first).CopyTo(destination[first..]);
        _start = (_start + length) % _ring.Length;
        _count -= length;
        return length;
    }

    private TaskCompletionSource? TakeWaiter()
    {
        TaskCompletionSource? waiter = _waiter;
        _waiter = null;
        return waiter;
    }
}
