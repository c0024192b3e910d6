using System.Text.Json;

namespace SharpVisor.Host.Firecracker;

/// <summary>Firecracker's Drive: a virtio-block device backed by a host file.</summary>
public sealed record Drive
{
    public required string DriveId { get; init; }

    public required bool IsRootDevice { get; init; }

    public string? Partuuid { get; init; }

    public string? CacheType { get; init; }

    public bool? IsReadOnly { get; init; }

    public string? PathOnHost { get; init; }

    /// <summary>Accepted by the schema, refused by SharpVisor (no I/O throttling yet).</summary>
    public JsonElement? RateLimiter { get; init; }

    public string? IoEngine { get; init; }

    /// <summary>vhost-user-block back end: refused by SharpVisor.</summary>
    public string? Socket { get; init; }
}
