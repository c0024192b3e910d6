namespace SharpVisor.Host.Firecracker;

/// <summary>Firecracker's NetworkOverride: another TAP for a NIC on snapshot load.</summary>
public sealed record NetworkOverride
{
    public required string IfaceId { get; init; }

    public required string HostDevName { get; init; }
}
