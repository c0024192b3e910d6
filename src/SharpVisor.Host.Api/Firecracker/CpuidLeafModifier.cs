namespace SharpVisor.Host.Firecracker;

/// <summary>One CPUID leaf of a CPU template: which registers' bits to set or clear.</summary>
public sealed record CpuidLeafModifier
{
    public required string Leaf { get; init; }

    public required string Subleaf { get; init; }

    public required uint Flags { get; init; }

    public required List<CpuidRegisterModifier> Modifiers { get; init; }
}
