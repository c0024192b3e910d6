using SharpVisor.TestSupport;

namespace SharpVisor.Kvm.Tests;

/// <summary>A test of behaviour specific to PVM-backed KVM (kvm_pvm loaded); skipped elsewhere, saying why.</summary>
public sealed class PvmFactAttribute : FactAttribute
{
    public PvmFactAttribute()
    {
        string? reason = HostCapabilities.KvmUnavailableReason;
        if (reason is not null)
        {
            Skip = "SKIPPED — NEEDS /dev/kvm: " + reason;
        }
        else if (!KvmHost.Probe().IsPvm)
        {
            Skip = "SKIPPED — NEEDS PVM-backed KVM: this host's KVM is hardware-backed";
        }
    }
}
