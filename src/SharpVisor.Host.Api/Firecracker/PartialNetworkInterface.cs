namespace SharpVisor.Host.Firecracker;

/// <summary>The body of PATCH /network-interfaces/{iface_id}: new rate limiters.</summary>
public sealed record PartialNetworkInterface
{
    public required string IfaceId { get; init; }

    public RateLimiter? RxRateLimiter { get; init; }

    public RateLimiter? TxRateLimiter { get; init; }
}
