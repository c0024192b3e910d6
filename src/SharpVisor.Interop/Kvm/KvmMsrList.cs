using System.Runtime.InteropServices;

namespace SharpVisor.Interop.Kvm;

/// <summary>The header of struct kvm_msr_list (KVM_GET_MSR_INDEX_LIST); <see cref="NMsrs"/> 32-bit MSR indices follow it.</summary>
[StructLayout(LayoutKind.Explicit, Size = 4)]
public struct KvmMsrList
{
    [FieldOffset(0)] public uint NMsrs;
}
