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
}
