using System.Runtime.InteropServices;

namespace SharpVisor.Interop;

/// <summary><c>struct epoll_event</c>, packed on x86-64 (12 bytes): the events and the caller's token.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 4)]
public struct EpollEvent
{
    public uint Events;
    public ulong Data;
}
