using SharpVisor.Devices.Virtio;

namespace SharpVisor.Host.Domains;

/// <summary>A virtio-block device backed by a host file, with Firecracker's cache_type as <see cref="DiskCacheMode"/>.</summary>
public sealed record DriveSpec(string Id, string Path, bool ReadOnly, bool IsRootDevice, DiskCacheMode CacheMode)
{
    /// <summary>Firecracker's rate_limiter, or null for none.</summary>
    public Vmm.RateLimitConfiguration? RateLimit { get; init; }
}
