using SharpVisor.Host.Domains;

namespace SharpVisor.Host.Daemon;

/// <summary>One domain's live figures for `top` and /metrics: CPU, memory, exits, device I/O, balloon.</summary>
public sealed record DomainStats
{
    public required int Id { get; init; }

    public required string Name { get; init; }

    public required string State { get; init; }

    public double? CpuSeconds { get; init; }

    public long? ResidentBytes { get; init; }

    public long MemoryMib { get; init; }

    public int Vcpus { get; init; }

    public double? UptimeSeconds { get; init; }

    public IReadOnlyDictionary<string, long> Exits { get; init; } = new Dictionary<string, long>();

    public IReadOnlyList<DeviceCounters> Devices { get; init; } = [];

    public long? BalloonTargetMib { get; init; }

    public long? BalloonActualMib { get; init; }

    /// <summary>Kernel protection violations by kind; null when the domain is not protected.</summary>
    public IReadOnlyDictionary<string, long>? ProtectionViolations { get; init; }
}
