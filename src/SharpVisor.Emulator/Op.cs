using System.Runtime.InteropServices;

namespace SharpVisor.Emulator;

/// <summary>
/// One decoded guest instruction, pre-bound to the handler that executes it. Operands are
/// resolved at decode time to register-file byte offsets, an address expression and an
/// immediate, so the handler does no decoding work. Offsets are relative to the block start,
/// so a block is valid wherever it is mapped.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct Op
{
    public delegate*<X86Cpu, ref Op, void> Handler;

    /// <summary>Immediate (sign- or zero-extended per encoding), or a branch target as an offset from the block start.</summary>
    public ulong Imm;

    /// <summary>Address displacement; for RIP-relative operands already relative to the block start.</summary>
    public ulong Disp;

    /// <summary>The ModRM.reg operand: a register-file byte offset (GPRs) or a register number (XMM, segment, control).</summary>
    public ushort Reg;

    /// <summary>The ModRM.rm operand when it is a register (same encoding as <see cref="Reg"/>).</summary>
    public ushort Rm;

    /// <summary>Base register slot (<see cref="RegisterFile.Zero"/> when absent, <see cref="RegisterFile.BlockRip"/> for RIP-relative).</summary>
    public byte Base;

    /// <summary>Index register slot (<see cref="RegisterFile.Zero"/> when absent).</summary>
    public byte Index;

    /// <summary>Index scale as a shift count (0-3).</summary>
    public byte Scale;

    /// <summary>Segment register number (ES=0 ... GS=5).</summary>
    public byte Seg;

    /// <summary>Address size in bytes (2, 4 or 8).</summary>
    public byte AddrSize;

    /// <summary>Operand size in bytes, for handlers shared between sizes.</summary>
    public byte OpSize;

    /// <summary>Instruction length in bytes.</summary>
    public byte Length;

    /// <summary><see cref="OpFlags"/>.</summary>
    public byte Flags;

    /// <summary>Offset of the instruction from the block start.</summary>
    public ushort Offset;

    /// <summary>A small extra operand (condition code, second immediate, sub-operation).</summary>
    public ushort Aux;

    /// <summary>Index of the instruction in its block (to find the Iced instruction for slow handlers and reports).</summary>
    public ushort Number;

    public readonly int NextOffset => Offset + Length;
}
