namespace SharpVisor.Host.Daemon;

/// <summary>The body of PUT /domains/{domain}/vcpu-pin: a vCPU ("0", "all") and host CPUs ("0-1,3", "all").</summary>
public sealed record VcpuPinRequest
{
    public required string Vcpu { get; init; }

    public required string Cpus { get; init; }
}
