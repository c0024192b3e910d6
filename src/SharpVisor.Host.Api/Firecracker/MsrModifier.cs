namespace SharpVisor.Host.Firecracker;

/// <summary>One MSR of a CPU template: its address and a "0b..." bitmap with x for "keep".</summary>
public sealed record MsrModifier
{
    public required string Addr { get; init; }

    public required string Bitmap { get; init; }
}
