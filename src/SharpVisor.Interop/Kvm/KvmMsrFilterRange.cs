using System.Runtime.InteropServices;

namespace SharpVisor.Interop.Kvm;

/// <summary>struct kvm_msr_filter_range: MSRs Base..Base+NMsrs-1, one bit each in Bitmap (1 = allowed).</summary>
[StructLayout(LayoutKind.Explicit, Size = 24)]
public struct KvmMsrFilterRange
{
    /// <summary>KVM_MSR_FILTER_READ: the range filters RDMSR.</summary>
    public const uint FilterRead = 1 << 0;

    /// <summary>KVM_MSR_FILTER_WRITE: the range filters WRMSR.</summary>
    public const uint FilterWrite = 1 << 1;

    [FieldOffset(0)] public uint Flags;
    [FieldOffset(4)] public uint NMsrs;
    [FieldOffset(8)] public uint Base;
    [FieldOffset(16)] public nint Bitmap;
}
