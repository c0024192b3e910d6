namespace SharpVisor.Host.Vmm;

/// <summary>A device's rate limit: bytes and operations, each bucket optional.</summary>
public sealed record RateLimitConfiguration(TokenBucketConfiguration? Bandwidth, TokenBucketConfiguration? Ops)
{
    /// <summary>Null when both buckets are acceptable, else why not.</summary>
    public string? Problem(string field) => Bandwidth?.Problem($"{field}.bandwidth") ?? Ops?.Problem($"{field}.ops");

    /// <summary>The device's limiter, or null when neither bucket limits anything.</summary>
    public Devices.RateLimiting.RateLimiter? Create()
    {
        Devices.RateLimiting.TokenBucket? bandwidth = Bandwidth?.Create();
        Devices.RateLimiting.TokenBucket? ops = Ops?.Create();
        return bandwidth is null && ops is null ? null : new Devices.RateLimiting.RateLimiter(bandwidth, ops);
    }
}
