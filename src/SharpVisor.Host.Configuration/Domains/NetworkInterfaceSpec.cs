namespace SharpVisor.Host.Domains;

/// <summary>A virtio-net device backed by a host TAP device; <paramref name="GuestMac"/> null means "pick one".</summary>
public sealed record NetworkInterfaceSpec(string Id, string TapName, string? GuestMac, int? Mtu)
{
    public Vmm.RateLimitConfiguration? RxRateLimit { get; init; }

    public Vmm.RateLimitConfiguration? TxRateLimit { get; init; }

    /// <summary>Sees the guest's frames first: the MMDS on the NICs PUT /mmds/config names.</summary>
    public SharpVisor.Devices.Virtio.FrameInterceptor? Interceptor { get; init; }
}
