namespace SharpVisor.Host.Daemon;

/// <summary>One line of `sharpvisor list`: a domain's identity, state and size.</summary>
public sealed record DomainInfo
{
    public required int Id { get; init; }

    public required string Name { get; init; }

    /// <summary>running, paused, shutdown, crashed or dying.</summary>
    public required string State { get; init; }

    public required int Vcpus { get; init; }

    public required long MemoryMib { get; init; }

    public required string Accelerator { get; init; }

    /// <summary>"pc", "pvh", "hvm" or "pv" (<see cref="DomainTypes"/>).</summary>
    public string Type { get; init; } = DomainTypes.Pc;

    /// <summary>Seconds since the current VMM started; null when it no longer runs.</summary>
    public double? UptimeSeconds { get; init; }

    public int? Pid { get; init; }

    /// <summary>Why the domain is shut down or crashed.</summary>
    public string? Detail { get; init; }

    /// <summary>A driver domain: how often the daemon started it again after its VMM died (docs/xen.md, "Driver domains").</summary>
    public int? Restarts { get; init; }

    public required DomainSchedule Schedule { get; init; }

    public required DateTimeOffset CreatedAt { get; init; }
}
