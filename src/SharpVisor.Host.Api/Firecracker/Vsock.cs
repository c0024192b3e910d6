namespace SharpVisor.Host.Firecracker;

/// <summary>Firecracker's Vsock: the guest's CID and the Unix socket its connections are proxied through.</summary>
public sealed record Vsock
{
    public required long GuestCid { get; init; }

    public required string UdsPath { get; init; }

    /// <summary>Deprecated in Firecracker's API and ignored there too; accepted for old clients.</summary>
    public string? VsockId { get; init; }
}
