using System.Runtime.InteropServices;

namespace SharpVisor.Interop.Kvm;

/// <summary>
/// struct kvm_msr_filter (KVM_X86_SET_MSR_FILTER): up to 16 ranges; an access a range denies exits
/// to user space (KVM_EXIT_X86_RDMSR/WRMSR) once KVM_CAP_X86_USER_SPACE_MSR asks for filter exits.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 4 + 4 + (MaxRanges * 24))]
public unsafe struct KvmMsrFilter
{
    public const int MaxRanges = 16;

    /// <summary>KVM_MSR_FILTER_DEFAULT_ALLOW: MSRs outside every range are allowed.</summary>
    public const uint DefaultAllow = 0;

    /// <summary>KVM_MSR_EXIT_REASON_FILTER: the argument of KVM_CAP_X86_USER_SPACE_MSR for filter exits.</summary>
    public const ulong ExitReasonFilter = 1 << 2;

    [FieldOffset(0)] public uint Flags;
    [FieldOffset(8)] public fixed byte Ranges[MaxRanges * 24];
}
