namespace SharpVisor.Host.Firecracker;

/// <summary>The body of PATCH /machine-config: a subset of <see cref="MachineConfig"/>.</summary>
public sealed record MachineConfigurationPatch
{
    public int? VcpuCount { get; init; }

    public long? MemSizeMib { get; init; }

    public bool? Smt { get; init; }

    public string? CpuTemplate { get; init; }

    public bool? TrackDirtyPages { get; init; }

    public string? HugePages { get; init; }
}
