namespace SharpVisor.Host.Firecracker;

/// <summary>
/// Firecracker's MachineConfiguration (the body of <c>/machine-config</c>): vCPU count and memory
/// size, with the optional knobs. Named after its path so it is not taken for the VMM's
/// <c>Vmm.MachineConfiguration</c>, the machine model it becomes part of.
/// </summary>
public sealed record MachineConfig
{
    public required int VcpuCount { get; init; }

    public required long MemSizeMib { get; init; }

    public bool? Smt { get; init; }

    public string? CpuTemplate { get; init; }

    public bool? TrackDirtyPages { get; init; }

    public string? HugePages { get; init; }
}
