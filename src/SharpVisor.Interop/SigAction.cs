using System.Runtime.InteropServices;

namespace SharpVisor.Interop;

/// <summary>glibc's <c>struct sigaction</c> on x86-64 (handler, 1024-bit mask, flags, restorer).</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct SigAction
{
    public const int SA_SIGINFO = 0x4;
    public const int SA_RESTART = 0x10000000;

    public nint Handler;
    public fixed ulong Mask[16];
    public int Flags;
    public nint Restorer;
}
