namespace SharpVisor;

/// <summary>
/// A virtio-blk disk backed by a raw image file; the guest names them vda, vdb, ... in order.
/// Writes the guest has flushed (Linux flushes on sync and fsync) are on the file's storage;
/// a guest that does not negotiate flushes gets a write-through disk.
/// </summary>
/// <param name="Path">The image file (a regular file; its size is the disk's size).</param>
/// <param name="ReadOnly">The guest may read but not write.</param>
/// <param name="Id">The disk's serial, which the guest reads (/sys/block/vdX/serial, /dev/disk/by-id); null: none.</param>
public sealed record DiskOptions(string Path, bool ReadOnly = false, string? Id = null);
