namespace SharpVisor.Host.Firecracker;

/// <summary>Firecracker's RateLimiter: a bandwidth bucket (bytes) and an ops bucket (requests), both optional.</summary>
public sealed record RateLimiter
{
    public TokenBucket? Bandwidth { get; init; }

    public TokenBucket? Ops { get; init; }
}
