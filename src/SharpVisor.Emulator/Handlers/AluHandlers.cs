using System.Runtime.CompilerServices;

namespace SharpVisor.Emulator;

/// <summary>Operand plumbing for the two-operand ALU instructions, generic over operation and size.</summary>
internal static unsafe class AluHandlers
{
    public const int FormRR = 0;
    public const int FormRM = 1;
    public const int FormMR = 2;
    public const int FormRI = 3;
    public const int FormMI = 4;
    public const int FormMRLock = 5;
    public const int FormMILock = 6;
    public const int FormCount = 7;

    /// <summary>Handler table [form * 4 + size index] for one operation.</summary>
    public static nint[] Table<TOp>()
        where TOp : struct, IBinaryOp
    {
        var t = new nint[FormCount * 4];
        Fill<TOp, Size8>(t);
        Fill<TOp, Size16>(t);
        Fill<TOp, Size32>(t);
        Fill<TOp, Size64>(t);
        return t;
    }

    private static void Fill<TOp, TSize>(nint[] t)
        where TOp : struct, IBinaryOp
        where TSize : struct, IOperandSize
    {
        int s = TSize.SizeIndex;
        t[(FormRR * 4) + s] = (nint)(delegate*<X86Cpu, ref Op, void>)&RR<TOp, TSize>;
        t[(FormRM * 4) + s] = (nint)(delegate*<X86Cpu, ref Op, void>)&RM<TOp, TSize>;
        t[(FormMR * 4) + s] = (nint)(delegate*<X86Cpu, ref Op, void>)&MR<TOp, TSize>;
        t[(FormRI * 4) + s] = (nint)(delegate*<X86Cpu, ref Op, void>)&RI<TOp, TSize>;
        t[(FormMI * 4) + s] = (nint)(delegate*<X86Cpu, ref Op, void>)&MI<TOp, TSize>;
        t[(FormMRLock * 4) + s] = (nint)(delegate*<X86Cpu, ref Op, void>)&MRLock<TOp, TSize>;
        t[(FormMILock * 4) + s] = (nint)(delegate*<X86Cpu, ref Op, void>)&MILock<TOp, TSize>;
    }

    public static void RR<TOp, TSize>(X86Cpu cpu, ref Op op)
        where TOp : struct, IBinaryOp
        where TSize : struct, IOperandSize
    {
        ulong a = TSize.ReadReg(cpu, op.Reg);
        ulong b = TSize.ReadReg(cpu, op.Rm);
        ulong r = TOp.Compute(cpu, a, b);
        if (TOp.WritesResult)
        {
            TSize.WriteReg(cpu, op.Reg, r);
        }

        TOp.SetFlags<TSize>(cpu, a, b, r);
    }

    public static void RI<TOp, TSize>(X86Cpu cpu, ref Op op)
        where TOp : struct, IBinaryOp
        where TSize : struct, IOperandSize
    {
        ulong a = TSize.ReadReg(cpu, op.Reg);
        ulong b = op.Imm;
        ulong r = TOp.Compute(cpu, a, b);
        if (TOp.WritesResult)
        {
            TSize.WriteReg(cpu, op.Reg, r);
        }

        TOp.SetFlags<TSize>(cpu, a, b, r);
    }

    public static void RM<TOp, TSize>(X86Cpu cpu, ref Op op)
        where TOp : struct, IBinaryOp
        where TSize : struct, IOperandSize =>
        RegisterDestination<TOp, TSize>(cpu, ref op, TSize.Read(cpu, cpu.Linear(ref op, TSize.Bytes, MemoryAccess.Read)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void RegisterDestination<TOp, TSize>(X86Cpu cpu, ref Op op, ulong b)
        where TOp : struct, IBinaryOp
        where TSize : struct, IOperandSize
    {
        ulong a = TSize.ReadReg(cpu, op.Reg);
        ulong r = TOp.Compute(cpu, a, b);
        if (TOp.WritesResult)
        {
            TSize.WriteReg(cpu, op.Reg, r);
        }

        TOp.SetFlags<TSize>(cpu, a, b, r);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MemoryOperand<TOp, TSize>(X86Cpu cpu, ulong linear, ulong b)
        where TOp : struct, IBinaryOp
        where TSize : struct, IOperandSize
    {
        if (TOp.WritesResult)
        {
            ref byte p = ref cpu.RmwRef(linear, TSize.Bytes);
            ulong a = TSize.Load(ref p);
            ulong r = TOp.Compute(cpu, a, b);
            TSize.Store(ref p, r);
            cpu.CommitRmw();
            TOp.SetFlags<TSize>(cpu, a, b, r);
        }
        else
        {
            ulong a = TSize.Read(cpu, linear);
            TOp.SetFlags<TSize>(cpu, a, b, TOp.Compute(cpu, a, b));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong MemoryLinear<TOp, TSize>(X86Cpu cpu, ref Op op)
        where TOp : struct, IBinaryOp
        where TSize : struct, IOperandSize =>
        cpu.Linear(ref op, TSize.Bytes, TOp.WritesResult ? MemoryAccess.Write : MemoryAccess.Read);

    public static void MR<TOp, TSize>(X86Cpu cpu, ref Op op)
        where TOp : struct, IBinaryOp
        where TSize : struct, IOperandSize =>
        MemoryOperand<TOp, TSize>(cpu, MemoryLinear<TOp, TSize>(cpu, ref op), TSize.ReadReg(cpu, op.Reg));

    public static void MI<TOp, TSize>(X86Cpu cpu, ref Op op)
        where TOp : struct, IBinaryOp
        where TSize : struct, IOperandSize =>
        MemoryOperand<TOp, TSize>(cpu, MemoryLinear<TOp, TSize>(cpu, ref op), op.Imm);

    // The flat forms (FlatForms): the same, with the address from X86Cpu.FlatLinear.
    public static void RMFlat<TOp, TSize>(X86Cpu cpu, ref Op op)
        where TOp : struct, IBinaryOp
        where TSize : struct, IOperandSize =>
        RegisterDestination<TOp, TSize>(cpu, ref op, TSize.Read(cpu, cpu.FlatLinear(ref op)));

    public static void MRFlat<TOp, TSize>(X86Cpu cpu, ref Op op)
        where TOp : struct, IBinaryOp
        where TSize : struct, IOperandSize =>
        MemoryOperand<TOp, TSize>(cpu, cpu.FlatLinear(ref op), TSize.ReadReg(cpu, op.Reg));

    public static void MIFlat<TOp, TSize>(X86Cpu cpu, ref Op op)
        where TOp : struct, IBinaryOp
        where TSize : struct, IOperandSize =>
        MemoryOperand<TOp, TSize>(cpu, cpu.FlatLinear(ref op), op.Imm);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void LockedMemoryOperand<TOp, TSize>(X86Cpu cpu, ref Op op, ulong b)
        where TOp : struct, IBinaryOp
        where TSize : struct, IOperandSize
    {
        ref byte p = ref cpu.RmwRef(cpu.Linear(ref op, TSize.Bytes, MemoryAccess.Write), TSize.Bytes);
        ulong a = TSize.Load(ref p);
        ulong r;
        while (true)
        {
            r = TOp.Compute(cpu, a, b);
            ulong seen = TSize.CompareExchange(ref p, r, a);
            if (seen == a)
            {
                break;
            }

            a = seen;
        }

        cpu.CommitRmw();
        TOp.SetFlags<TSize>(cpu, a, b, r);
    }

    public static void MRLock<TOp, TSize>(X86Cpu cpu, ref Op op)
        where TOp : struct, IBinaryOp
        where TSize : struct, IOperandSize =>
        LockedMemoryOperand<TOp, TSize>(cpu, ref op, TSize.ReadReg(cpu, op.Reg));

    public static void MILock<TOp, TSize>(X86Cpu cpu, ref Op op)
        where TOp : struct, IBinaryOp
        where TSize : struct, IOperandSize =>
        LockedMemoryOperand<TOp, TSize>(cpu, ref op, op.Imm);
}
