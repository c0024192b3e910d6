namespace SharpVisor.Host.Daemon;

/// <summary>
/// What the daemon keeps about a domain in its runtime directory (domain.json), so a
/// restarted daemon knows the domain's name, settings and which process is its VMM.
/// </summary>
public sealed record DomainRecord
{
    public required int Id { get; init; }

    public required string Name { get; init; }

    public required string Accelerator { get; init; }

    /// <summary>"pc", "pvh", "hvm" or "pv"; records written before Xen domains existed have none: pc.</summary>
    public string? Type { get; init; }

    public required DateTimeOffset CreatedAt { get; init; }

    public int? Pid { get; init; }

    public long? PidStartTicks { get; init; }

    public DateTimeOffset? StartedAt { get; init; }

    /// <summary>The last state the daemon saw (the VMM's own state file says more while it runs).</summary>
    public required string State { get; init; }

    public string? Detail { get; init; }

    public DomainSchedule Schedule { get; init; } = new();
}
