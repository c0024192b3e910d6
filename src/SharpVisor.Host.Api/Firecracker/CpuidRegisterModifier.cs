namespace SharpVisor.Host.Firecracker;

/// <summary>One register of a CPUID leaf modifier: "eax".."edx" and a "0b..." bitmap with x for "keep".</summary>
public sealed record CpuidRegisterModifier
{
    public required string Register { get; init; }

    public required string Bitmap { get; init; }
}
