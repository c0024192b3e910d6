namespace SharpVisor.Host.Firecracker.Mmds;

/// <summary>The body of PUT /mmds/config: the protocol version, the NICs the guest reaches the MMDS through, and its address.</summary>
public sealed record MmdsConfiguration
{
    public const string DefaultIpv4Address = "169.254.169.254";

    /// <summary>V1 or V2 (default V1, as Firecracker).</summary>
    public string? Version { get; init; }

    public required List<string> NetworkInterfaces { get; init; }

    public string? Ipv4Address { get; init; }

    /// <summary>Parsed only to refuse it: EC2 IMDS-compatible answers are not supported.</summary>
    public bool? ImdsCompat { get; init; }
}
