namespace SharpVisor.Machine.Protection;

/// <summary>
/// Register state that may not change after lock: CR0 and CR4 bits that must stay set, EFER bits
/// that must stay set, and MSR values that may not be rewritten (null: not pinned).
/// </summary>
public sealed record RegisterPins
{
    public static readonly RegisterPins None = new();

    public ulong Cr0Bits { get; init; }

    public ulong Cr4Bits { get; init; }

    public ulong EferBits { get; init; }

    public ulong? Lstar { get; init; }

    public ulong? SysenterEip { get; init; }
}
