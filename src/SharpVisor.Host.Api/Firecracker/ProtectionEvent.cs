namespace SharpVisor.Host.Firecracker;

/// <summary>One protection violation as the VMM's API reports it (docs/security.md).</summary>
public sealed record ProtectionEvent
{
    public required DateTimeOffset Time { get; init; }

    /// <summary>kernel-write, kernel-exec, cr-pin, msr-pin, dma, gdt or measurement.</summary>
    public required string Kind { get; init; }

    /// <summary>The vCPU, or -1 for a device or a measurement.</summary>
    public required int Vcpu { get; init; }

    public required string Rip { get; init; }

    public required string Target { get; init; }

    public required string Value { get; init; }

    public required bool Blocked { get; init; }
}
