namespace SharpVisor.Emulator.Translator;

/// <summary>Why tier-1 code called out of inline code (<see cref="Tier1CallProfile"/>).</summary>
internal enum Tier1CallReason : byte
{
    /// <summary>The handler has no inline form: the handler is called for every run.</summary>
    NoForm,

    /// <summary>The handler has an inline form but this op cannot use it (operand size, high-byte register, LOCK, mode, address form).</summary>
    NotInlinable,

    /// <summary>An inline memory form's TLB check missed: the handler ran the whole instruction.</summary>
    TlbMiss,

    /// <summary>A taken inline branch to a non-canonical target: the handler raises #GP.</summary>
    BadTarget,

    /// <summary>An inline form's uncommon case: DIV's handler ran (a TLB miss, a zero divisor, EDX/RDX not below it for 32 bits, not 0 for 64).</summary>
    SlowCase,

    /// <summary>A rotate with live flags: CF and OF merged into RFLAGS by <see cref="X86Cpu.UpdateStatusFlags"/>, which evaluates lazy flags first (not a handler).</summary>
    RotateFlags,
}
