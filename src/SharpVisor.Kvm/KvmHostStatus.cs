namespace SharpVisor.Kvm;

/// <summary>What <see cref="KvmHost.Probe"/> found: whether KVM opens, and whether it is backed by hardware or by PVM.</summary>
public sealed record KvmHostStatus(bool IsUsable, bool IsPvm, string Summary)
{
    /// <summary>KVM opens and uses VT-x/AMD-V: the fast path for guests.</summary>
    public bool IsHardwareBacked => IsUsable && !IsPvm;
}
