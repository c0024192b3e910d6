namespace SharpVisor.Host.Firecracker;

/// <summary>The body of PUT /entropy: a virtio-rng device, optionally rate limited.</summary>
public sealed record EntropyDevice
{
    /// <summary>Parsed only to refuse it: the virtio-rng is not rate limited yet.</summary>
    public RateLimiter? RateLimiter { get; init; }
}
