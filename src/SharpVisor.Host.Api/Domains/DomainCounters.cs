namespace SharpVisor.Host.Domains;

/// <summary>A snapshot of one domain's counters: vCPU exits by reason, device I/O, balloon size.</summary>
public sealed record DomainCounters
{
    public IReadOnlyDictionary<string, long> Exits { get; init; } = new Dictionary<string, long>();

    public IReadOnlyList<DeviceCounters> Devices { get; init; } = [];

    public long? BalloonTargetMib { get; init; }

    public long? BalloonActualMib { get; init; }

    /// <summary>Kernel protection violations by kind (docs/security.md); null when the domain is not protected.</summary>
    public IReadOnlyDictionary<string, long>? ProtectionViolations { get; init; }
}
