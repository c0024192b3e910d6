namespace SharpVisor.Emulator.Translator;

/// <summary>The instruction forms tier 1 emits inline rather than calling their handler.</summary>
internal enum InlineKind : byte
{
    None,
    MovRR,
    MovRI,
    MovRM,
    MovMR,
    MovMI,
    Lea,
    AluRR,
    AluRI,
    AluRM,

    /// <summary>An ALU op with a memory first operand and a register second: CMP/TEST read memory, the others read, modify and write it (the TLB's write check).</summary>
    AluMR,

    /// <summary>An ALU op with a memory first operand and an immediate (as <see cref="AluMR"/>).</summary>
    AluMI,
    PushR,
    PushI,
    PopR,

    /// <summary>INC/DEC of a register (<see cref="InlineForm.Alu"/> Add for INC, Sub for DEC): CF preserved through _lazyCarry.</summary>
    IncDecR,

    /// <summary>INC/DEC of memory (read, modify, write through the TLB's write check), flags as <see cref="IncDecR"/>.</summary>
    IncDecM,

    /// <summary>IMUL r, r and IMUL r, r, imm (<see cref="Op.Aux"/> != 0): CF = OF = signed overflow, flags set eagerly as the handler does.</summary>
    ImulR,

    /// <summary>ROL/ROR/SHL/SHR/SAR r, imm (<see cref="Op.Aux"/> = ShiftSemantics kind): the result, and the flags as ShiftSemantics sets them when a later instruction can read them.</summary>
    ShiftRI,

    /// <summary>ROL/ROR/SHL/SHR/SAR r, CL: as <see cref="ShiftRI"/> with the count from RCX; a masked count of 0 changes no flag.</summary>
    ShiftRCl,

    /// <summary>NEG r: the flags of 0 - r (lazy SUB with operands 0 and r).</summary>
    NegR,

    /// <summary>NOT r: writes no flags.</summary>
    NotR,

    /// <summary>BSWAP r32 / r64: writes no flags.</summary>
    BswapR,

    /// <summary>DIV r/m (32/64): inline when the high half of the dividend (EDX/RDX) is 0 and the divisor is not; else the handler (#DE, wide dividends). Writes no flags.</summary>
    DivRM,

    /// <summary>NOP (the multi-byte forms too): nothing to emit.</summary>
    Nop,

    /// <summary>MOVZX/MOVSX/MOVSXD r, r: <see cref="InlineForm.SourceIndex"/> is the source size, <see cref="InlineForm.Signed"/> the extension.</summary>
    ExtendRR,

    /// <summary>MOVZX/MOVSX/MOVSXD r, m.</summary>
    ExtendRM,

    /// <summary>SETcc r8 (<see cref="Op.Aux"/> = condition code): reads the flags, writes none.</summary>
    SetccR,

    /// <summary>CMOVcc r, r (<see cref="Op.Aux"/> = condition code): a 32-bit destination is written (zero-extended) either way.</summary>
    CmovRR,

    /// <summary>CALL rel32 in 64-bit mode: the return address pushed inline, then the block is left at the target.</summary>
    CallRel,

    /// <summary>RET / RET imm16 in 64-bit mode: the return address popped inline, then the block is left at it.</summary>
    Ret,
}

/// <summary>The ALU operations tier 1 emits inline, with the lazy-flags kind each records.</summary>
internal enum InlineAlu : byte
{
    None,
    Add,
    Sub,
    Cmp,
    And,
    Or,
    Xor,
    Test,

    /// <summary>ADC: reads CF (the interpreter's CarryFlag on the lazy state) and records it in _lazyCarry.</summary>
    Adc,

    /// <summary>SBB: a - b - CF, CF recorded in _lazyCarry as for ADC.</summary>
    Sbb,
}

/// <summary>
/// A handler recognized as an inline form: what it does and at which operand size (index 0 = 8-bit,
/// 1 = 16-bit, 2 = 32-bit, 3 = 64-bit); for MOVZX/MOVSX the source's size index and signedness.
/// </summary>
internal readonly record struct InlineForm(InlineKind Kind, int SizeIndex, InlineAlu Alu = InlineAlu.None, int SourceIndex = 0, bool Signed = false);
