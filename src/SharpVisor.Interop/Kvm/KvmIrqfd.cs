using System.Runtime.InteropServices;

namespace SharpVisor.Interop.Kvm;

/// <summary>struct kvm_irqfd (KVM_IRQFD): an eventfd whose signal injects a GSI without a trip through user space.</summary>
[StructLayout(LayoutKind.Explicit, Size = 32)]
public struct KvmIrqfd
{
    public const uint FlagDeassign = 1 << 0;
    public const uint FlagResample = 1 << 1;

    [FieldOffset(0)] public uint Fd;
    [FieldOffset(4)] public uint Gsi;
    [FieldOffset(8)] public uint Flags;
    [FieldOffset(12)] public uint ResampleFd;
}
