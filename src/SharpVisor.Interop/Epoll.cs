using System.Runtime.InteropServices;

namespace SharpVisor.Interop;

/// <summary>
/// An epoll instance. Its own descriptor is readable while any registered descriptor has an
/// event, so one poll source (a device worker's) can stand for a changing set of descriptors.
/// </summary>
public sealed unsafe class Epoll : IDisposable
{
    private int _fd;

    public Epoll()
    {
        _fd = LibC.EpollCreate1(LibC.EPOLL_CLOEXEC);
        LinuxException.ThrowIfFailed(_fd, "epoll_create1");
    }

    public int Fd => _fd;

    /// <summary>Watches <paramref name="fd"/> for <paramref name="events"/>; <paramref name="token"/> comes back with its events.</summary>
    public void Add(int fd, uint events, ulong token) => Control(LibC.EPOLL_CTL_ADD, fd, events, token);

    /// <summary>Stops watching <paramref name="fd"/> (also implied when it is closed).</summary>
    public void Remove(int fd)
    {
        var e = default(EpollEvent);
        LibC.EpollCtl(_fd, LibC.EPOLL_CTL_DEL, fd, &e);
    }

    /// <summary>Fills <paramref name="events"/> with what is ready now (or within the timeout); returns how many.</summary>
    public int Wait(Span<EpollEvent> events, int timeoutMilliseconds)
    {
        fixed (EpollEvent* p = events)
        {
            int n = LibC.EpollWait(_fd, p, events.Length, timeoutMilliseconds);
            if (n < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno == LibC.EINTR)
                {
                    return 0;
                }

                throw new LinuxException("epoll_wait", errno);
            }

            return n;
        }
    }

    public void Dispose()
    {
        if (_fd >= 0)
        {
            LibC.Close(_fd);
            _fd = -1;
        }
    }

    private void Control(int op, int fd, uint events, ulong token)
    {
        var e = new EpollEvent { Events = events, Data = token };
        LinuxException.ThrowIfFailed(LibC.EpollCtl(_fd, op, fd, &e), "epoll_ctl");
    }
}
