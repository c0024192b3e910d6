using Xunit;

namespace SharpVisor.TestSupport;

/// <summary>A theory that boots the default guest; skipped with the exact reason where no accelerator can (see <see cref="DefaultGuestFactAttribute"/>).</summary>
public sealed class DefaultGuestTheoryAttribute : TheoryAttribute
{
    public DefaultGuestTheoryAttribute()
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
