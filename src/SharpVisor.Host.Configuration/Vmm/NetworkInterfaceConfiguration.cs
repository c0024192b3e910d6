namespace SharpVisor.Host.Vmm;

/// <summary>
/// A virtio-net NIC over a TAP interface: an existing one named by <see cref="TapName"/> is
/// attached to; a name that does not exist is created (needs CAP_NET_ADMIN) and disappears
/// with the VMM; no name lets the kernel pick tapN. No <see cref="Mac"/> means a random
/// locally administered address.
/// </summary>
public sealed record NetworkInterfaceConfiguration
{
    public string? TapName { get; init; }

    public MacAddress? Mac { get; init; }

    /// <summary>The name in metrics and logs (Firecracker's iface_id); net0, net1, ... when null.</summary>
    public string? Id { get; init; }

    /// <summary>Frames to the guest: a limit, or null for none.</summary>
    public RateLimitConfiguration? RxRateLimit { get; init; }

    /// <summary>Frames from the guest: a limit, or null for none.</summary>
    public RateLimitConfiguration? TxRateLimit { get; init; }

    /// <summary>Sees the guest's frames before the TAP (the MMDS); null for none.</summary>
    public SharpVisor.Devices.Virtio.FrameInterceptor? Interceptor { get; init; }
}
