using Xunit;

namespace SharpVisor.TestSupport;

/// <summary>
/// A test that boots the default guest (Debian's kernel and the busybox initramfs). Where no
/// accelerator here can boot it, the test is skipped with the exact reason — loudly, never faked.
/// </summary>
public sealed class DefaultGuestFactAttribute : FactAttribute
{
    public DefaultGuestFactAttribute()
    {
        if (GuestBootCapability.UnavailableReason is { } reason)
        {
            Skip = "SKIPPED — NEEDS AN ACCELERATOR THAT BOOTS THE DEFAULT GUEST: " + reason;
        }
    }

    /// <summary>The test also needs TAP networking in a network namespace (root, /dev/net/tun).</summary>
    public bool NeedsNetwork
    {
        get => false;
        set
        {
            if (value && Skip is null && NetworkNamespace.UnavailableReason is { } reason)
            {
                Skip = "SKIPPED — NEEDS TAP NETWORKING: " + reason;
            }
        }
    }
}
