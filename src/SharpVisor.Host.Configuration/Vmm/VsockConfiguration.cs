namespace SharpVisor.Host.Vmm;

/// <summary>
/// A virtio-vsock device with Firecracker's host convention: guest connections to port P go to
/// the Unix socket "<see cref="UdsPath"/>_P", host programs connect to <see cref="UdsPath"/>.
/// </summary>
public sealed record VsockConfiguration(ulong GuestCid, string UdsPath);
