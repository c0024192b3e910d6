using System.Runtime.InteropServices;

namespace SharpVisor.Interop;

/// <summary><c>struct iovec</c>: one buffer of a vectored read or write.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct IoVector
{
    public void* Base;
    public nuint Length;
}
