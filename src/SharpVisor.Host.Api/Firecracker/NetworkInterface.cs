namespace SharpVisor.Host.Firecracker;

/// <summary>Firecracker's NetworkInterface: a virtio-net device backed by a host TAP device.</summary>
public sealed record NetworkInterface
{
    public required string IfaceId { get; init; }

    public required string HostDevName { get; init; }

    public string? GuestMac { get; init; }

    public int? Mtu { get; init; }

    /// <summary>Frames to the guest, enforced in the virtio-net worker.</summary>
    public RateLimiter? RxRateLimiter { get; init; }

    /// <summary>Frames from the guest.</summary>
    public RateLimiter? TxRateLimiter { get; init; }
}
