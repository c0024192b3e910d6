using Xunit;

namespace SharpVisor.TestSupport;

/// <summary>
/// A test that needs /dev/kvm. Where KVM is missing or not accessible the test is skipped
/// with a reason that says so loudly; it is never faked.
/// </summary>
public sealed class KvmFactAttribute : FactAttribute
{
    public KvmFactAttribute()
    {
        string? reason = HostCapabilities.KvmUnavailableReason;
        if (reason is not null)
        {
            Skip = "SKIPPED — NEEDS /dev/kvm: " + reason;
        }
    }
}
