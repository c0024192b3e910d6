using System.Runtime.InteropServices;

namespace SharpVisor.Interop.Kvm;

/// <summary>struct kvm_pit_state2: the in-kernel PIT's three channels and flags (112 bytes, kept as bytes).</summary>
[StructLayout(LayoutKind.Explicit, Size = 112)]
public unsafe struct KvmPitState2
{
    [FieldOffset(0)] public fixed byte Bytes[112];
}
