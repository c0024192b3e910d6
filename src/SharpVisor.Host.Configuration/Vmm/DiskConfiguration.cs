using SharpVisor.Devices.Virtio;

namespace SharpVisor.Host.Vmm;

/// <summary>
/// A virtio-blk disk over a raw image file. Disks appear to the guest in the order given
/// (/dev/vda, /dev/vdb, ...); <see cref="Id"/> is the serial the guest reads with GET_ID
/// (/sys/block/vdX/serial, /dev/disk/by-id) and the name in metrics; <see cref="CacheMode"/>
/// says when a completed write is durable.
/// </summary>
public sealed record DiskConfiguration(string Path, bool ReadOnly = false, string? Id = null, DiskCacheMode CacheMode = DiskCacheMode.Writeback)
{
    /// <summary>Requests and bytes per second the guest may use, or null for no limit.</summary>
    public RateLimitConfiguration? RateLimit { get; init; }

    /// <summary>
    /// Under --xen: the driver domain (its domid) that serves this vbd instead of the VMM's own
    /// blkback (xl's <c>backend=</c>; docs/xen.md, "Driver domains"); null for Dom0's.
    /// </summary>
    public ushort? XenBackendDomain { get; init; }
}
