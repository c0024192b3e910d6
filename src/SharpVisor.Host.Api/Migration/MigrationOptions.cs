namespace SharpVisor.Host.Migration;

/// <summary>How a source migrates: the downtime it aims at and the most pre-copy rounds before it stops anyway.</summary>
public sealed record MigrationOptions
{
    public const int DefaultDowntimeMs = 300;

    /// <summary>Pre-copy ends when the dirty set would go in this long at the measured bandwidth (Cloud Hypervisor's default target).</summary>
    public TimeSpan DowntimeTarget { get; init; } = TimeSpan.FromMilliseconds(DefaultDowntimeMs);

    /// <summary>Pre-copy rounds after which the machine is paused whatever is still dirty (a guest dirtying faster than the link).</summary>
    public int MaxRounds { get; init; } = 30;

    /// <summary>The longest wait for the destination's answers (accept, ready).</summary>
    public TimeSpan ReplyTimeout { get; init; } = TimeSpan.FromMinutes(2);
}
