namespace SharpVisor;

/// <summary>A virtio-net NIC attached to an existing host TAP interface (creating TAPs needs CAP_NET_ADMIN; see docs/embedding.md).</summary>
/// <param name="TapName">The host TAP interface, e.g. "tap0".</param>
/// <param name="MacAddress">The guest's MAC address ("52:54:00:12:34:56"); null picks a random locally administered one.</param>
public sealed record NetworkInterfaceOptions(string TapName, string? MacAddress = null);
