namespace SharpVisor.Host.Firecracker;

/// <summary>Firecracker's BalloonStats: the balloon's size and the guest's latest memory statistics.</summary>
public sealed record BalloonStats
{
    public required long TargetPages { get; init; }

    public required long ActualPages { get; init; }

    public required long TargetMib { get; init; }

    public required long ActualMib { get; init; }

    public long? SwapIn { get; init; }

    public long? SwapOut { get; init; }

    public long? MajorFaults { get; init; }

    public long? MinorFaults { get; init; }

    public long? FreeMemory { get; init; }

    public long? TotalMemory { get; init; }

    public long? AvailableMemory { get; init; }

    public long? DiskCaches { get; init; }

    public long? HugetlbAllocations { get; init; }

    public long? HugetlbFailures { get; init; }

    public long? OomKill { get; init; }

    public long? AllocStall { get; init; }

    public long? AsyncScan { get; init; }

    public long? DirectScan { get; init; }

    public long? AsyncReclaim { get; init; }

    public long? DirectReclaim { get; init; }

    /// <summary>Maps the guest's statistics by virtio tag (VIRTIO_BALLOON_S_*) onto Firecracker's fields.</summary>
    public static BalloonStats From(Domains.BalloonState state)
    {
        long? Tag(ushort tag) => state.Statistics.TryGetValue(tag, out ulong value) ? (long)Math.Min(value, long.MaxValue) : null;
        return new BalloonStats
        {
            TargetPages = state.TargetPages,
            ActualPages = state.ActualPages,
            TargetMib = state.TargetMib,
            ActualMib = state.ActualMib,
            SwapIn = Tag(0),
            SwapOut = Tag(1),
            MajorFaults = Tag(2),
            MinorFaults = Tag(3),
            FreeMemory = Tag(4),
            TotalMemory = Tag(5),
            AvailableMemory = Tag(6),
            DiskCaches = Tag(7),
            HugetlbAllocations = Tag(8),
            HugetlbFailures = Tag(9),
            OomKill = Tag(10),
            AllocStall = Tag(11),
            AsyncScan = Tag(12),
            DirectScan = Tag(13),
            AsyncReclaim = Tag(14),
            DirectReclaim = Tag(15),
        };
    }
}
