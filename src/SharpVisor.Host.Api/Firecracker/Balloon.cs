namespace SharpVisor.Host.Firecracker;

/// <summary>Firecracker's Balloon: the memory balloon's target size and options.</summary>
public sealed record Balloon
{
    public required long AmountMib { get; init; }

    public required bool DeflateOnOom { get; init; }

    public int? StatsPollingIntervalS { get; init; }

    public bool? FreePageHinting { get; init; }

    public bool? FreePageReporting { get; init; }
}
