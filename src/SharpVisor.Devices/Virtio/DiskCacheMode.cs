namespace SharpVisor.Devices.Virtio;

/// <summary>
/// When a virtio-blk write counts as done (Firecracker's <c>cache_type</c>). Both modes offer
/// VIRTIO_BLK_F_FLUSH and honour flush requests with fsync; they differ for a driver that does
/// not negotiate FLUSH, which by the virtio spec assumes the device has no volatile cache.
/// </summary>
public enum DiskCacheMode
{
    /// <summary>
    /// The default. With FLUSH negotiated, writes complete from the host page cache and a flush
    /// makes them durable; without it the device is write-through: every write, discard and
    /// write-zeroes is fdatasync'ed before the driver is told it completed.
    /// </summary>
    Writeback,

    /// <summary>Writes complete from the host page cache even without FLUSH: a host crash may lose acknowledged writes.</summary>
    Unsafe,
}
