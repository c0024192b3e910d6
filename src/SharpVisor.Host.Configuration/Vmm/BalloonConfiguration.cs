namespace SharpVisor.Host.Vmm;

/// <summary>
/// A virtio-balloon device: the control plane sets a target (MiB the guest should hand back)
/// and the guest inflates or deflates towards it.
/// </summary>
public sealed record BalloonConfiguration
{
    /// <summary>The longest statistics interval: Firecracker's field is a u16 of seconds.</summary>
    public const int MaxStatisticsIntervalSeconds = ushort.MaxValue;

    /// <summary>The target the guest sees at boot, in MiB.</summary>
    public long InitialTargetMib { get; init; }

    /// <summary>Offer VIRTIO_BALLOON_F_DEFLATE_ON_OOM: the guest may take pages back under memory pressure.</summary>
    public bool DeflateOnOom { get; init; } = true;

    /// <summary>Seconds between statistics refreshes; 0 does not offer the statistics queue at all.</summary>
    public int StatisticsIntervalSeconds { get; init; }
}
