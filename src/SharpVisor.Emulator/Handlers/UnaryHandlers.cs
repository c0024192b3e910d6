namespace SharpVisor.Emulator;

/// <summary>INC, DEC, NOT, NEG on a register or memory (optionally locked), generic over the operation.</summary>
internal static unsafe class UnaryHandlers
{
    public const int Inc = 0;
    public const int Dec = 1;
    public const int Not = 2;
    public const int Neg = 3;

    /// <summary>Handler table [kind * 12 + form * 4 + size index], forms: register, memory, locked memory.</summary>
    public static readonly nint[] Table = BuildTable();

    private static nint[] BuildTable()
    {
        var t = new nint[4 * 12];
        Fill<IncOp>(t, Inc);
        Fill<DecOp>(t, Dec);
        Fill<NotOp>(t, Not);
        Fill<NegOp>(t, Neg);
        return t;
    }

    private static void Fill<TOp>(nint[] t, int kind)
        where TOp : struct, IUnaryOp
    {
        int b = kind * 12;
        t[b + 0] = (nint)(delegate*<X86Cpu, ref Op, void>)&R<TOp, Size8>;
        t[b + 1] = (nint)(delegate*<X86Cpu, ref Op, void>)&R<TOp, Size16>;
        t[b + 2] = (nint)(delegate*<X86Cpu, ref Op, void>)&R<TOp, Size32>;
        t[b + 3] = (nint)(delegate*<X86Cpu, ref Op, void>)&R<TOp, Size64>;
        t[b + 4] = (nint)(delegate*<X86Cpu, ref Op, void>)&M<TOp, Size8>;
        t[b + 5] = (nint)(delegate*<X86Cpu, ref Op, void>)&M<TOp, Size16>;
        t[b + 6] = (nint)(delegate*<X86Cpu, ref Op, void>)&M<TOp, Size32>;
        t[b + 7] = (nint)(delegate*<X86Cpu, ref Op, void>)&M<TOp, Size64>;
        t[b + 8] = (nint)(delegate*<X86Cpu, ref Op, void>)&MLock<TOp, Size8>;
        t[b + 9] = (nint)(delegate*<X86Cpu, ref Op, void>)&MLock<TOp, Size16>;
        t[b + 10] = (nint)(delegate*<X86Cpu, ref Op, void>)&MLock<TOp, Size32>;
        t[b + 11] = (nint)(delegate*<X86Cpu, ref Op, void>)&MLock<TOp, Size64>;
    }

    public static void R<TOp, TSize>(X86Cpu cpu, ref Op op)
        where TOp : struct, IUnaryOp
        where TSize : struct, IOperandSize
    {
        ulong a = TSize.ReadReg(cpu, op.Reg);
        ulong r = TOp.Compute(a);
        TSize.WriteReg(cpu, op.Reg, r);
        TOp.SetFlags<TSize>(cpu, a, r);
    }

    public static void M<TOp, TSize>(X86Cpu cpu, ref Op op)
        where TOp : struct, IUnaryOp
        where TSize : struct, IOperandSize
    {
        ref byte p = ref cpu.RmwRef(cpu.Linear(ref op, TSize.Bytes, MemoryAccess.Write), TSize.Bytes);
        ulong a = TSize.Load(ref p);
        ulong r = TOp.Compute(a);
        TSize.Store(ref p, r);
        cpu.CommitRmw();
        TOp.SetFlags<TSize>(cpu, a, r);
    }

    public static void MLock<TOp, TSize>(X86Cpu cpu, ref Op op)
        where TOp : struct, IUnaryOp
        where TSize : struct, IOperandSize
    {
        ref byte p = ref cpu.RmwRef(cpu.Linear(ref op, TSize.Bytes, MemoryAccess.Write), TSize.Bytes);
        ulong a = TSize.Load(ref p);
        ulong r;
        while (true)
        {
            r = TOp.Compute(a);
            ulong seen = TSize.CompareExchange(ref p, r, a);
            if (seen == a)
            {
                break;
            }

            a = seen;
        }

        cpu.CommitRmw();
        TOp.SetFlags<TSize>(cpu, a, r);
    }
}
