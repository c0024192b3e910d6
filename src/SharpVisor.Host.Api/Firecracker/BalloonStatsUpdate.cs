namespace SharpVisor.Host.Firecracker;

/// <summary>The body of PATCH /balloon/statistics: a new statistics polling interval.</summary>
public sealed record BalloonStatsUpdate
{
    public required int StatsPollingIntervalS { get; init; }
}
