namespace SharpVisor.Host.Domains;

/// <summary>
/// A balloon as the guest last reported it: the host's target, the pages the guest says it
/// holds, and its latest statistics by virtio tag (VIRTIO_BALLOON_S_SWAP_IN = 0 ... ).
/// </summary>
public sealed record BalloonState(long TargetPages, long ActualPages, IReadOnlyDictionary<ushort, ulong> Statistics)
{
    public const int PagesPerMib = 256;

    public long TargetMib => TargetPages / PagesPerMib;

    public long ActualMib => ActualPages / PagesPerMib;
}
