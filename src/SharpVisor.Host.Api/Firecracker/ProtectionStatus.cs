namespace SharpVisor.Host.Firecracker;

/// <summary>
/// GET /sharpvisor/protection: a protected domain's policy, whether its kernel is locked, the
/// golden and latest measurements, its violations by kind and the most recent ones (newest last).
/// </summary>
public sealed record ProtectionStatus
{
    public required string Policy { get; init; }

    public required bool Locked { get; init; }

    public DateTimeOffset? LockedAt { get; init; }

    public string? GoldenMeasurement { get; init; }

    public string? LatestMeasurement { get; init; }

    public required IReadOnlyDictionary<string, long> Violations { get; init; }

    public required IReadOnlyList<ProtectionEvent> RecentViolations { get; init; }
}
