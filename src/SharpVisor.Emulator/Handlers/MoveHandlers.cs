using System.Buffers.Binary;

namespace SharpVisor.Emulator;

/// <summary>MOV, MOVZX/MOVSX/MOVSXD, LEA, CMOVcc, SETcc, BSWAP, MOVBE.</summary>
internal static class MoveHandlers
{
    public static void MovRR<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize =>
        TSize.WriteReg(cpu, op.Reg, TSize.ReadReg(cpu, op.Rm));

    public static void MovRM<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize =>
        TSize.WriteReg(cpu, op.Reg, TSize.Read(cpu, cpu.Linear(ref op, TSize.Bytes, MemoryAccess.Read)));

    public static void MovMR<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize =>
        TSize.Write(cpu, cpu.Linear(ref op, TSize.Bytes, MemoryAccess.Write), TSize.ReadReg(cpu, op.Reg));

    // The flat forms: the same instructions with an operand InstructionBinder.IsFlat accepts.
    public static void MovRMFlat<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize =>
        TSize.WriteReg(cpu, op.Reg, TSize.Read(cpu, cpu.FlatLinear(ref op)));

    public static void MovMRFlat<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize =>
        TSize.Write(cpu, cpu.FlatLinear(ref op), TSize.ReadReg(cpu, op.Reg));

    public static void MovMIFlat<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize =>
        TSize.Write(cpu, cpu.FlatLinear(ref op), op.Imm);

    public static void MovRI<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize =>
        TSize.WriteReg(cpu, op.Reg, op.Imm);

    public static void MovMI<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize =>
        TSize.Write(cpu, cpu.Linear(ref op, TSize.Bytes, MemoryAccess.Write), op.Imm);

    public static void MovzxRR<TDst, TSrc>(X86Cpu cpu, ref Op op)
        where TDst : struct, IOperandSize
        where TSrc : struct, IOperandSize =>
        TDst.WriteReg(cpu, op.Reg, TSrc.ReadReg(cpu, op.Rm));

    public static void MovzxRM<TDst, TSrc>(X86Cpu cpu, ref Op op)
        where TDst : struct, IOperandSize
        where TSrc : struct, IOperandSize =>
        TDst.WriteReg(cpu, op.Reg, TSrc.Read(cpu, cpu.Linear(ref op, TSrc.Bytes, MemoryAccess.Read)));

    public static void MovzxRMFlat<TDst, TSrc>(X86Cpu cpu, ref Op op)
        where TDst : struct, IOperandSize
        where TSrc : struct, IOperandSize =>
        TDst.WriteReg(cpu, op.Reg, TSrc.Read(cpu, cpu.FlatLinear(ref op)));

    public static void MovsxRR<TDst, TSrc>(X86Cpu cpu, ref Op op)
        where TDst : struct, IOperandSize
        where TSrc : struct, IOperandSize =>
        TDst.WriteReg(cpu, op.Reg, TSrc.SignExtend(TSrc.ReadReg(cpu, op.Rm)));

    public static void MovsxRM<TDst, TSrc>(X86Cpu cpu, ref Op op)
        where TDst : struct, IOperandSize
        where TSrc : struct, IOperandSize =>
        TDst.WriteReg(cpu, op.Reg, TSrc.SignExtend(TSrc.Read(cpu, cpu.Linear(ref op, TSrc.Bytes, MemoryAccess.Read))));

    public static void MovsxRMFlat<TDst, TSrc>(X86Cpu cpu, ref Op op)
        where TDst : struct, IOperandSize
        where TSrc : struct, IOperandSize =>
        TDst.WriteReg(cpu, op.Reg, TSrc.SignExtend(TSrc.Read(cpu, cpu.FlatLinear(ref op))));

    public static void Lea<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize =>
        TSize.WriteReg(cpu, op.Reg, cpu.EffectiveAddress(ref op));

    public static void CmovRR<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ulong value = cpu.Condition(op.Aux) ? TSize.ReadReg(cpu, op.Rm) : TSize.ReadReg(cpu, op.Reg);

        // A 32-bit CMOV writes (zero-extends) its destination even when the condition is false.
        TSize.WriteReg(cpu, op.Reg, value);
    }

    public static void CmovRM<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ulong source = TSize.Read(cpu, cpu.Linear(ref op, TSize.Bytes, MemoryAccess.Read));
        TSize.WriteReg(cpu, op.Reg, cpu.Condition(op.Aux) ? source : TSize.ReadReg(cpu, op.Reg));
    }

    public static void SetccR(X86Cpu cpu, ref Op op) =>
        Size8.WriteReg(cpu, op.Reg, cpu.Condition(op.Aux) ? 1UL : 0);

    public static void SetccM(X86Cpu cpu, ref Op op) =>
        cpu.Write8(cpu.Linear(ref op, 1, MemoryAccess.Write), cpu.Condition(op.Aux) ? (byte)1 : (byte)0);

    public static void Bswap32(X86Cpu cpu, ref Op op) =>
        Size32.WriteReg(cpu, op.Reg, BinaryPrimitives.ReverseEndianness((uint)Size32.ReadReg(cpu, op.Reg)));

    public static void Bswap64(X86Cpu cpu, ref Op op) =>
        Size64.WriteReg(cpu, op.Reg, BinaryPrimitives.ReverseEndianness(Size64.ReadReg(cpu, op.Reg)));

    /// <summary>BSWAP r16: the result is architecturally undefined; processors clear the register's low word.</summary>
    public static void Bswap16(X86Cpu cpu, ref Op op) =>
        Size16.WriteReg(cpu, op.Reg, 0);

    public static void MovbeRM<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize =>
        TSize.WriteReg(cpu, op.Reg, Swap<TSize>(TSize.Read(cpu, cpu.Linear(ref op, TSize.Bytes, MemoryAccess.Read))));

    public static void MovbeMR<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize =>
        TSize.Write(cpu, cpu.Linear(ref op, TSize.Bytes, MemoryAccess.Write), Swap<TSize>(TSize.ReadReg(cpu, op.Reg)));

    private static ulong Swap<TSize>(ulong value)
        where TSize : struct, IOperandSize =>
        BinaryPrimitives.ReverseEndianness(value) >> (64 - TSize.Bits);

    /// <summary>MOVSXD with 16/32-bit destination behaves like MOV.</summary>
    public static void Nop(X86Cpu cpu, ref Op op)
    {
    }

    /// <summary>A memory operand that is only checked for faults (CLFLUSH and friends).</summary>
    public static void TouchRead(X86Cpu cpu, ref Op op) =>
        cpu.ProbeRead(cpu.Linear(ref op, 1, MemoryAccess.Read), 1);
}
