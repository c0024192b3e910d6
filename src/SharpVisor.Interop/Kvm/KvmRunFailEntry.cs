using System.Runtime.InteropServices;

namespace SharpVisor.Interop.Kvm;

/// <summary>kvm_run.fail_entry (KVM_EXIT_FAIL_ENTRY): the hardware refused to enter the guest.</summary>
[StructLayout(LayoutKind.Explicit, Size = 16)]
public struct KvmRunFailEntry
{
    [FieldOffset(0)]
    public ulong HardwareEntryFailureReason;

    [FieldOffset(8)]
    public uint Cpu;
}
