using System.Runtime.InteropServices;

namespace SharpVisor.Interop.Kvm;

/// <summary>kvm_run.mmio (KVM_EXIT_MMIO): an access of up to 8 bytes the guest made outside any memory slot.</summary>
[StructLayout(LayoutKind.Explicit, Size = 24)]
public unsafe struct KvmRunMmio
{
    [FieldOffset(0)]
    public ulong PhysAddr;

    [FieldOffset(8)]
    public fixed byte Data[8];

    [FieldOffset(16)]
    public uint Len;

    [FieldOffset(20)]
    public byte IsWrite;
}
