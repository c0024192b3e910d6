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

    /// <summary>Enforced in the virtio-blk worker: one op per request, its data bytes.</summary>
    public RateLimiter? RateLimiter { get; init; }

    public string? IoEngine { get; init; }

    /// <summary>SharpVisor's: the driver domain (by name) that serves this disk of a Xen domain; the daemon resolves it (docs/xen.md, "Driver domains").</summary>
    public string? XenBackend { get; init; }

    /// <summary>SharpVisor's: the driver domain's domid, as the daemon resolved <see cref="XenBackend"/>.</summary>
    public ushort? XenBackendDomain { get; init; }

    /// <summary>vhost-user-block back end: refused by SharpVisor.</summary>
    public string? Socket { get; init; }
}
