using SharpVisor.TestSupport;

namespace SharpVisor.Kvm.Tests;

/// <summary>
/// A test of SharpVisor's Xen layer on KVM's Xen support: it needs /dev/kvm whose KVM_CAP_XEN_HVM has
/// every flag <see cref="KvmXenSupport.RequiredFlags"/> names. Elsewhere it is skipped, loudly, with
/// the capability's value on this host — never faked.
/// </summary>
public sealed class KvmXenFactAttribute : FactAttribute
{
    public KvmXenFactAttribute()
    {
        string? reason = HostCapabilities.KvmUnavailableReason;
        if (reason is not null)
        {
            Skip = "SKIPPED — NEEDS /dev/kvm with KVM_CAP_XEN_HVM: " + reason;
            return;
        }

        KvmXenSupport xen = KvmXenSupport.Probe();
        if (!xen.IsUsable)
        {
            Skip = $"SKIPPED — NEEDS KVM_CAP_XEN_HVM with HYPERCALL_MSR, INTERCEPT_HCALL and SHARED_INFO: this host's /dev/kvm reports {xen.Describe()}";
        }
    }
}
