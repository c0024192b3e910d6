namespace SharpVisor.Devices.Terminal;

/// <summary>
/// A write-only stream that hands bytes to a background thread, which writes them to the
/// target in batches. A UART sends one byte per guest port write; a system call per byte
/// would dominate an output-heavy guest. The writer wakes as soon as a byte arrives and takes
/// everything queued meanwhile, so batching never delays output when the guest goes quiet.
/// When the buffer is full (the terminal or pipe is not keeping up) writers wait for room,
/// as a guest waits on a slow serial line; nothing is dropped unless the target fails.
/// </summary>
public sealed class OutputPump : Stream
{
    public const int DefaultBufferSize = 64 * 1024;

    private static readonly TimeSpan s_drainTimeout = TimeSpan.FromSeconds(5);

    private readonly Stream _target;
    private readonly bool _ownsTarget;
    private readonly object _lock = new();
    private readonly Thread _writer;
    private byte[] _filling;
    private byte[] _writing;
    private int _count;
    private bool _busy;
    private bool _writerIdle;
    private int _blockedProducers;
    private bool _closing;
    private string? _error;

    public OutputPump(Stream target, bool ownsTarget = false, int bufferSize = DefaultBufferSize)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentOutOfRangeException.ThrowIfLessThan(bufferSize, 1);
        _target = target;
        _ownsTarget = ownsTarget;
        _filling = new byte[bufferSize];
        _writing = new byte[bufferSize];
        _writer = new Thread(WriteLoop) { IsBackground = true, Name = "console output" };
        _writer.Start();
    }

    /// <summary>Why output stopped (the target failed); null while it works.</summary>
    public string? Error
    {
        get
        {
            lock (_lock)
            {
                return _error;
            }
        }
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

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void WriteByte(byte value) => Write([value]);

    public override void Write(ReadOnlySpan<byte> data)
    {
        lock (_lock)
        {
            while (!data.IsEmpty)
            {
                if (_error is not null || _closing)
                {
                    return;
                }

                int room = _filling.Length - _count;
                if (room == 0)
                {
                    _blockedProducers++;
                    Monitor.Wait(_lock);
                    _blockedProducers--;
                    continue;
                }

                int chunk = Math.Min(room, data.Length);
                data[..chunk].CopyTo(_filling.AsSpan(_count));
                _count += chunk;
                data = data[chunk..];

                // Wake the writer only when it sleeps; a busy writer finds the bytes on its next round.
                if (_writerIdle)
                {
                    Monitor.PulseAll(_lock);
                }
            }
        }
    }

    /// <summary>Does not wait: the writer thread is already on its way. Use <see cref="Drain"/> to wait.</summary>
    public override void Flush()
    {
    }

    /// <summary>Waits until everything written so far has reached the target (or it failed).</summary>
    public bool Drain(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        lock (_lock)
        {
            while ((_count > 0 || _busy) && _error is null)
            {
                TimeSpan left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero)
                {
                    return false;
                }

                Monitor.Wait(_lock, left);
            }

            return true;
        }
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            // The guest's last words (a panic, say) still go out; a stuck target does not hang us.
            Drain(s_drainTimeout);
            lock (_lock)
            {
                _closing = true;
                Monitor.PulseAll(_lock);
            }

            if (_writer.Join(s_drainTimeout) && _ownsTarget)
            {
                _target.Dispose();
            }
        }

        base.Dispose(disposing);
    }

    private void WriteLoop()
    {
        while (true)
        {
            int count;
            lock (_lock)
            {
                _busy = false;
                while (_count == 0 && !_closing)
                {
                    Monitor.PulseAll(_lock); // progress for Drain
                    _writerIdle = true;
                    Monitor.Wait(_lock);
                    _writerIdle = false;
                }

                if (_count == 0)
                {
                    return;
                }

                (_filling, _writing) = (_writing, _filling);
                count = _count;
                _count = 0;
                _busy = true;
                if (_blockedProducers > 0)
                {
                    Monitor.PulseAll(_lock); // room again
                }
            }

            try
            {
                _target.Write(_writing, 0, count);
                _target.Flush();
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or NotSupportedException)
            {
                lock (_lock)
                {
                    _error = e.Message;
                    _count = 0;
                    _busy = false;
                    Monitor.PulseAll(_lock);
                }

                return;
            }
        }
    }
}
