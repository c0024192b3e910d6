using System.Text.Json;

namespace SharpVisor.Host.Firecracker;

/// <summary>The body of PUT /entropy: a virtio-rng device, optionally rate limited.</summary>
public sealed record EntropyDevice
{
    /// <summary>Parsed only to refuse it: SharpVisor has no rate limiter yet.</summary>
    public JsonElement? RateLimiter { get; init; }
}
