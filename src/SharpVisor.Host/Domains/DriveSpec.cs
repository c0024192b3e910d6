namespace SharpVisor.Host.Domains;

/// <summary>A virtio-block device backed by a host file.</summary>
public sealed record DriveSpec(string Id, string Path, bool ReadOnly, bool IsRootDevice, bool Writeback);
