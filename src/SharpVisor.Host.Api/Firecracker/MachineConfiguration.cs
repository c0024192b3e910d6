namespace SharpVisor.Host.Firecracker;

/// <summary>Firecracker's MachineConfiguration: vCPU count and memory size, with the optional knobs.</summary>
public sealed record MachineConfiguration
{
    public required int VcpuCount { get; init; }

    public required long MemSizeMib { get; init; }

    public bool? Smt { get; init; }

    public string? CpuTemplate { get; init; }

    public bool? TrackDirtyPages { get; init; }

    public string? HugePages { get; init; }
}
