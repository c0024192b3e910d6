using System.Runtime.InteropServices;

namespace SharpVisor.Interop.Kvm;

/// <summary>struct kvm_translation (KVM_TRANSLATE): a guest linear address walked through the vCPU's page tables.</summary>
[StructLayout(LayoutKind.Explicit, Size = 24)]
public struct KvmTranslation
{
    [FieldOffset(0)] public ulong LinearAddress;
    [FieldOffset(8)] public ulong PhysicalAddress;
    [FieldOffset(16)] public byte Valid;
    [FieldOffset(17)] public byte Writeable;
    [FieldOffset(18)] public byte Usermode;
}
