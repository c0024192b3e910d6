using System.Runtime.InteropServices;

namespace SharpVisor.Interop;

/// <summary><c>struct pollfd</c>: a descriptor, the events asked for and the events that happened.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct PollFd
{
    public int Fd;
    public short Events;
    public short Revents;
}
