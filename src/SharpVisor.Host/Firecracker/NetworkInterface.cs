using System.Text.Json;

namespace SharpVisor.Host.Firecracker;

/// <summary>Firecracker's NetworkInterface: a virtio-net device backed by a host TAP device.</summary>
public sealed record NetworkInterface
{
    public required string IfaceId { get; init; }

    public required string HostDevName { get; init; }

    public string? GuestMac { get; init; }

    public int? Mtu { get; init; }

    public JsonElement? RxRateLimiter { get; init; }

    public JsonElement? TxRateLimiter { get; init; }
}
