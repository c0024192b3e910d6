namespace SharpVisor.Emulator;

/// <summary>Group-2 shifts/rotates (Aux = kind) and SHLD/SHRD (Aux = 1 for left) with an immediate (Imm) or CL count.</summary>
internal static class ShiftHandlers
{
    public static void RImm<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize => ShiftReg<TSize>(cpu, ref op, op.Imm);

    public static void RCl<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize => ShiftReg<TSize>(cpu, ref op, cpu.Gpr(1));

    public static void MImm<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize => ShiftMem<TSize>(cpu, ref op, op.Imm);

    public static void MCl<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize => ShiftMem<TSize>(cpu, ref op, cpu.Gpr(1));

    private static void ShiftReg<TSize>(X86Cpu cpu, ref Op op, ulong rawCount)
        where TSize : struct, IOperandSize
    {
        int count = ShiftSemantics.MaskCount<TSize>(rawCount);
        if (count != 0)
        {
            TSize.WriteReg(cpu, op.Reg, ShiftSemantics.Apply<TSize>(cpu, op.Aux, TSize.ReadReg(cpu, op.Reg), count));
        }
        else if (TSize.Bits == 32)
        {
            // Even a zero count writes (zero-extends) a 32-bit destination.
            TSize.WriteReg(cpu, op.Reg, TSize.ReadReg(cpu, op.Reg));
        }
    }

    private static void ShiftMem<TSize>(X86Cpu cpu, ref Op op, ulong rawCount)
        where TSize : struct, IOperandSize
    {
        ref byte p = ref cpu.RmwRef(cpu.Linear(ref op, TSize.Bytes, MemoryAccess.Write), TSize.Bytes);
        int count = ShiftSemantics.MaskCount<TSize>(rawCount);
        if (count != 0)
        {
            TSize.Store(ref p, ShiftSemantics.Apply<TSize>(cpu, op.Aux, TSize.Load(ref p), count));
        }

        cpu.CommitRmw();
    }

    // SHLD/SHRD: destination is Reg (register form) or memory, source register is Rm.
    public static void DoubleRImm<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize => DoubleReg<TSize>(cpu, ref op, op.Imm);

    public static void DoubleRCl<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize => DoubleReg<TSize>(cpu, ref op, cpu.Gpr(1));

    public static void DoubleMImm<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize => DoubleMem<TSize>(cpu, ref op, op.Imm);

    public static void DoubleMCl<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize => DoubleMem<TSize>(cpu, ref op, cpu.Gpr(1));

    private static void DoubleReg<TSize>(X86Cpu cpu, ref Op op, ulong rawCount)
        where TSize : struct, IOperandSize
    {
        int count = ShiftSemantics.MaskCount<TSize>(rawCount);
        if (count != 0)
        {
            ulong r = ShiftSemantics.Double<TSize>(cpu, op.Aux != 0, TSize.ReadReg(cpu, op.Reg), TSize.ReadReg(cpu, op.Rm), count);
            TSize.WriteReg(cpu, op.Reg, r);
        }
        else if (TSize.Bits == 32)
        {
            TSize.WriteReg(cpu, op.Reg, TSize.ReadReg(cpu, op.Reg));
        }
    }

    private static void DoubleMem<TSize>(X86Cpu cpu, ref Op op, ulong rawCount)
        where TSize : struct, IOperandSize
    {
        ref byte p = ref cpu.RmwRef(cpu.Linear(ref op, TSize.Bytes, MemoryAccess.Write), TSize.Bytes);
        int count = ShiftSemantics.MaskCount<TSize>(rawCount);
        if (count != 0)
        {
            TSize.Store(ref p, ShiftSemantics.Double<TSize>(cpu, op.Aux != 0, TSize.Load(ref p), TSize.ReadReg(cpu, op.Rm), count));
        }

        cpu.CommitRmw();
    }
}
