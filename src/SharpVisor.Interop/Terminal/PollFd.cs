using System.Runtime.InteropServices;

namespace SharpVisor.Interop.Terminal;

/// <summary><c>struct pollfd</c>: one descriptor to wait on, the events wanted and the events that happened.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct PollFd
{
    public int Fd;
    public short Events;
    public short ReturnedEvents;
}
