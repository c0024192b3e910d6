using System.Runtime.InteropServices;

namespace SharpVisor.Interop.Kvm;

/// <summary>struct kvm_lapic_state: the in-kernel local APIC's 1 KiB register page (KVM_GET_LAPIC/KVM_SET_LAPIC).</summary>
[StructLayout(LayoutKind.Explicit, Size = 1024)]
public unsafe struct KvmLapicState
{
    public const int Size = 1024;

    /// <summary>Register offsets in the APIC page.</summary>
    public const int ApicIdOffset = 0x20;
    public const int LvtLint0Offset = 0x350;
    public const int LvtLint1Offset = 0x360;

    [FieldOffset(0)] public fixed byte Regs[Size];
}
