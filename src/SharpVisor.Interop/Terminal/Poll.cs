using System.Runtime.InteropServices;

namespace SharpVisor.Interop.Terminal;

/// <summary>The poll(2) system call and its event bits.</summary>
public static unsafe partial class Poll
{
    public const short POLLIN = 0x001;
    public const short POLLPRI = 0x002;
    public const short POLLOUT = 0x004;
    public const short POLLERR = 0x008;
    public const short POLLHUP = 0x010;
    public const short POLLNVAL = 0x020;

    /// <summary>Waits until one of <paramref name="fds"/> is ready; a negative timeout waits forever.</summary>
    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    public static partial int Wait(PollFd* fds, nuint count, int timeoutMilliseconds);
}
