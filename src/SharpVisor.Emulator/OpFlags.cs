namespace SharpVisor.Emulator;

/// <summary>Bits in <see cref="Op.Flags"/>.</summary>
internal static class OpFlags
{
    /// <summary>LOCK prefix on a read-modify-write memory operand.</summary>
    public const byte Lock = 1;

    /// <summary>The memory operand is addressed through SS (stack faults are #SS, not #GP).</summary>
    public const byte StackSegment = 2;

    /// <summary>REP/REPE prefix (F3).</summary>
    public const byte Rep = 4;

    /// <summary>REPNE prefix (F2).</summary>
    public const byte RepNe = 8;

    /// <summary>The rm operand is memory (not a register).</summary>
    public const byte Memory = 16;

    /// <summary>A 16-byte SSE memory operand that must be 16-byte aligned (#GP otherwise).</summary>
    public const byte Aligned = 32;

    /// <summary>The operation works on MMX registers (64-bit) instead of XMM.</summary>
    public const byte Mmx = 64;

    /// <summary>An explicitly aligned move (MOVAPS, MOVDQA, MOVNTPS, ...): misaligned is #GP even in AMD's misaligned SSE mode.</summary>
    public const byte ExplicitlyAligned = 128;
}
