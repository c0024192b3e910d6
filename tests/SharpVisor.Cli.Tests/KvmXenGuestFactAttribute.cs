using SharpVisor.Kvm;
using SharpVisor.TestSupport;

namespace SharpVisor.Cli.Tests;

/// <summary>
/// A default-guest boot under --xen with --accel kvm: it needs hardware-backed KVM (PVM would take
/// hours) whose KVM_CAP_XEN_HVM has HYPERCALL_MSR, INTERCEPT_HCALL and SHARED_INFO, and the default
/// guest. Elsewhere it is skipped, loudly, with what this host reports — never faked.
/// </summary>
public sealed class KvmXenGuestFactAttribute : FactAttribute
{
    public KvmXenGuestFactAttribute()
    {
        if (HostCapabilities.KvmUnavailableReason is { } noKvm)
        {
            Skip = "SKIPPED — NEEDS /dev/kvm with KVM_CAP_XEN_HVM: " + noKvm;
            return;
        }

        KvmXenSupport xen = KvmXenSupport.Probe();
        KvmHostStatus kvm = KvmHost.Probe();
        if (!xen.IsUsable || !kvm.IsHardwareBacked)
        {
            Skip = $"SKIPPED — NEEDS hardware-backed KVM with KVM_CAP_XEN_HVM's HYPERCALL_MSR, INTERCEPT_HCALL and SHARED_INFO: this host's /dev/kvm reports {xen.Describe()}; {kvm.Summary}";
            return;
        }

        if (GuestBootCapability.UnavailableReason is { } noGuest)
        {
            Skip = "SKIPPED — NEEDS THE DEFAULT GUEST: " + noGuest;
        }
    }
}
