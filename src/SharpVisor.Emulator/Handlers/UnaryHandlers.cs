namespace SharpVisor.Emulator;

/// <summary>INC, DEC, NOT, NEG on a register or memory (optionally locked).</summary>
internal static class UnaryHandlers
{
    public const int Inc = 0;
    public const int Dec = 1;
    public const int Not = 2;
    public const int Neg = 3;

    private static ulong Compute<TSize>(X86Cpu cpu, int kind, ulong a)
        where TSize : struct, IOperandSize => kind switch
        {
            Inc => a + 1,
            Dec => a - 1,
            Not => ~a,
            _ => 0 - a,
        };

    private static void SetFlags<TSize>(X86Cpu cpu, int kind, ulong a, ulong r)
        where TSize : struct, IOperandSize
    {
        switch (kind)
        {
            case Inc:
                cpu._lazyCarry = cpu.CarryFlag ? 1UL : 0;
                cpu.SetLazy(LazyFlags.Inc, TSize.SizeIndex, a & TSize.Mask, 1, TSize.SignExtend(r));
                break;
            case Dec:
                cpu._lazyCarry = cpu.CarryFlag ? 1UL : 0;
                cpu.SetLazy(LazyFlags.Dec, TSize.SizeIndex, a & TSize.Mask, 1, TSize.SignExtend(r));
                break;
            case Neg:
                cpu.SetLazy(LazyFlags.Sub, TSize.SizeIndex, 0, a & TSize.Mask, TSize.SignExtend(r));
                break;
        }
    }

    public static void R<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ulong a = TSize.ReadReg(cpu, op.Reg);
        ulong r = Compute<TSize>(cpu, op.Aux, a);
        TSize.WriteReg(cpu, op.Reg, r);
        SetFlags<TSize>(cpu, op.Aux, a, r);
    }

    public static void M<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ref byte p = ref cpu.RmwRef(cpu.Linear(ref op, TSize.Bytes, MemoryAccess.Write), TSize.Bytes);
        ulong a = TSize.Load(ref p);
        ulong r = Compute<TSize>(cpu, op.Aux, a);
        TSize.Store(ref p, r);
        cpu.CommitRmw();
        SetFlags<TSize>(cpu, op.Aux, a, r);
    }

    public static void MLock<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ref byte p = ref cpu.RmwRef(cpu.Linear(ref op, TSize.Bytes, MemoryAccess.Write), TSize.Bytes);
        ulong a = TSize.Load(ref p);
        ulong r;
        while (true)
        {
            r = Compute<TSize>(cpu, op.Aux, a);
            ulong seen = TSize.CompareExchange(ref p, r, a);
            if (seen == a)
            {
                break;
            }

            a = seen;
        }

        cpu.CommitRmw();
        SetFlags<TSize>(cpu, op.Aux, a, r);
    }
}
