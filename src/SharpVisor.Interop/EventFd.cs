namespace SharpVisor.Interop;

/// <summary>An eventfd: a counter the kernel can signal (ioeventfd) or wait on (irqfd).</summary>
public sealed unsafe class EventFd : IDisposable
{
    private int _fd;

    public EventFd(bool nonBlocking = false)
    {
        _fd = LibC.Eventfd(0, LibC.EFD_CLOEXEC | (nonBlocking ? LibC.EFD_NONBLOCK : 0));
        LinuxException.ThrowIfFailed(_fd, "eventfd");
    }

    public int Fd => _fd;

    public void Signal(ulong value = 1)
    {
        ulong v = value;
        if (LibC.Write(_fd, &v, sizeof(ulong)) != sizeof(ulong))
        {
            throw LinuxException.FromLastError("eventfd write");
        }
    }

    /// <summary>Reads and resets the counter; returns 0 when non-blocking and nothing is pending.</summary>
    public ulong Consume()
    {
        ulong v = 0;
        nint n = LibC.Read(_fd, &v, sizeof(ulong));
        return n == sizeof(ulong) ? v : 0;
    }

    public void Dispose()
    {
        if (_fd >= 0)
        {
            LibC.Close(_fd);
            _fd = -1;
        }
    }
}
