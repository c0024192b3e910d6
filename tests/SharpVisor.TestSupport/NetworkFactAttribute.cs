using Xunit;

namespace SharpVisor.TestSupport;

/// <summary>A test that needs TAP networking in a network namespace (root, /dev/net/tun); skipped with the reason where there is none.</summary>
public sealed class NetworkFactAttribute : FactAttribute
{
    public NetworkFactAttribute()
    {
        if (NetworkNamespace.UnavailableReason is { } reason)
        {
            Skip = "SKIPPED — NEEDS TAP NETWORKING: " + reason;
        }
    }
}
