using System.Runtime.InteropServices;

namespace SharpVisor.Interop;

/// <summary>System calls used by device back ends: poll, fallocate, and the socket calls TAP set-up needs.</summary>
public static unsafe partial class LibC
{
    public const short POLLIN = 0x001;
    public const short POLLOUT = 0x004;
    public const short POLLERR = 0x008;
    public const short POLLHUP = 0x010;
    public const short POLLNVAL = 0x020;

    public const int FALLOC_FL_KEEP_SIZE = 0x01;
    public const int FALLOC_FL_PUNCH_HOLE = 0x02;
    public const int FALLOC_FL_ZERO_RANGE = 0x10;

    public const int EOPNOTSUPP = 95;

    /// <summary>preadv2/pwritev2 flag: fail with EAGAIN rather than wait for the disk (page-cache hits only).</summary>
    public const int RWF_NOWAIT = 0x08;

    /// <summary>The most buffers one preadv2/pwritev2 takes (IOV_MAX).</summary>
    public const int IOV_MAX = 1024;
    public const int EINVAL = 22;
    public const int EBUSY = 16;

    public const int AF_INET = 2;
    public const int AF_PACKET = 17;
    public const int SOCK_DGRAM = 2;
    public const int SOCK_RAW = 3;
    public const int SOCK_CLOEXEC = 0x80000;

    [LibraryImport(Library, EntryPoint = "poll", SetLastError = true)]
    public static partial int Poll(PollFd* fds, nuint count, int timeoutMilliseconds);

    [LibraryImport(Library, EntryPoint = "preadv2", SetLastError = true)]
    public static partial nint Preadv2(int fd, IoVector* vectors, int count, long offset, int flags);

    [LibraryImport(Library, EntryPoint = "pwritev2", SetLastError = true)]
    public static partial nint Pwritev2(int fd, IoVector* vectors, int count, long offset, int flags);

    [LibraryImport(Library, EntryPoint = "fallocate", SetLastError = true)]
    public static partial int Fallocate(int fd, int mode, long offset, long length);

    [LibraryImport(Library, EntryPoint = "socket", SetLastError = true)]
    public static partial int Socket(int domain, int type, int protocol);

    [LibraryImport(Library, EntryPoint = "bind", SetLastError = true)]
    public static partial int Bind(int fd, void* address, uint addressLength);
}
