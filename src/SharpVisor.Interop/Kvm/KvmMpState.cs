using System.Runtime.InteropServices;

namespace SharpVisor.Interop.Kvm;

/// <summary>struct kvm_mp_state: whether a vCPU runs, waits for INIT/SIPI, or is halted.</summary>
[StructLayout(LayoutKind.Explicit, Size = 4)]
public struct KvmMpState
{
    public const uint Runnable = 0;
    public const uint Uninitialized = 1;
    public const uint InitReceived = 2;
    public const uint Halted = 3;
    public const uint SipiReceived = 4;

    [FieldOffset(0)] public uint MpState;
}
