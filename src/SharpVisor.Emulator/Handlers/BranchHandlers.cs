using System.Runtime.CompilerServices;

namespace SharpVisor.Emulator;

/// <summary>Near JMP, Jcc, CALL, RET, LOOPcc, JrCXZ. Targets are block-relative offsets in <see cref="Op.Imm"/>.</summary>
internal static unsafe class BranchHandlers
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong OperandMask(ref Op op) => ulong.MaxValue >> (64 - (op.OpSize << 3));

    // Inlined: the JIT left it a call in every taken Jcc.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong RelativeTarget(X86Cpu cpu, ref Op op) =>
        (cpu._regs[RegisterFile.BlockRip] + op.Imm) & OperandMask(ref op);

    public static void JmpRel(X86Cpu cpu, ref Op op) => cpu.Jump(RelativeTarget(cpu, ref op));

    public static void Jcc<TCond>(X86Cpu cpu, ref Op op)
        where TCond : struct, ICondition
    {
        if (TCond.Evaluate(cpu))
        {
            cpu.Jump(RelativeTarget(cpu, ref op));
        }
    }

    /// <summary>Jcc handlers indexed by condition code.</summary>
    public static readonly nint[] JccTable =
    [
        (nint)(delegate*<X86Cpu, ref Op, void>)&Jcc<CondO>, (nint)(delegate*<X86Cpu, ref Op, void>)&Jcc<CondNo>,
        (nint)(delegate*<X86Cpu, ref Op, void>)&Jcc<CondB>, (nint)(delegate*<X86Cpu, ref Op, void>)&Jcc<CondAe>,
        (nint)(delegate*<X86Cpu, ref Op, void>)&Jcc<CondE>, (nint)(delegate*<X86Cpu, ref Op, void>)&Jcc<CondNe>,
        (nint)(delegate*<X86Cpu, ref Op, void>)&Jcc<CondBe>, (nint)(delegate*<X86Cpu, ref Op, void>)&Jcc<CondA>,
        (nint)(delegate*<X86Cpu, ref Op, void>)&Jcc<CondS>, (nint)(delegate*<X86Cpu, ref Op, void>)&Jcc<CondNs>,
        (nint)(delegate*<X86Cpu, ref Op, void>)&Jcc<CondP>, (nint)(delegate*<X86Cpu, ref Op, void>)&Jcc<CondNp>,
        (nint)(delegate*<X86Cpu, ref Op, void>)&Jcc<CondL>, (nint)(delegate*<X86Cpu, ref Op, void>)&Jcc<CondGe>,
        (nint)(delegate*<X86Cpu, ref Op, void>)&Jcc<CondLe>, (nint)(delegate*<X86Cpu, ref Op, void>)&Jcc<CondG>,
    ];

    public static void JmpR<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize =>
        cpu.Jump(TSize.ReadReg(cpu, op.Rm));

    public static void JmpM<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize =>
        cpu.Jump(TSize.Read(cpu, cpu.Linear(ref op, TSize.Bytes, MemoryAccess.Read)));

    /// <summary>
    /// Pushes the return address and jumps. In 64-bit mode Intel processors store the return address
    /// before they find the target non-canonical: the #GP leaves RSP as it was but the stack written.
    /// </summary>
    private static void CallTo<TSize>(X86Cpu cpu, ref Op op, ulong target)
        where TSize : struct, IOperandSize
    {
        if (!cpu._is64)
        {
            cpu.CheckJumpTarget(target);
            cpu.Push<TSize>(cpu.NextIp(ref op));
            cpu.Jump(target);
            return;
        }

        ulong rsp = cpu.Gpr(X86Cpu.Rsp);
        cpu.Push<TSize>(cpu.NextIp(ref op));
        if (!X86Cpu.IsCanonical(target))
        {
            cpu.Gpr(X86Cpu.Rsp) = rsp;
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }

        cpu.Jump(target);
    }

    public static void CallRel<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ulong target = RelativeTarget(cpu, ref op);
        CallTo<TSize>(cpu, ref op, target);
    }

    public static void CallR<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ulong target = TSize.ReadReg(cpu, op.Rm);
        CallTo<TSize>(cpu, ref op, target);
    }

    public static void CallM<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ulong target = TSize.Read(cpu, cpu.Linear(ref op, TSize.Bytes, MemoryAccess.Read));
        CallTo<TSize>(cpu, ref op, target);
    }

    /// <summary>RET / RET imm16 (Imm = bytes to release after popping).</summary>
    public static void Ret<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ulong target = cpu.PeekStack<TSize>(0);
        cpu.CheckJumpTarget(target);
        cpu.Gpr(X86Cpu.Rsp) = cpu.StackAdd(cpu.Gpr(X86Cpu.Rsp), (ulong)TSize.Bytes + op.Imm);
        cpu.Jump(target);
    }

    /// <summary>LOOP/LOOPE/LOOPNE (Aux = 0, 1, 2): the counter is CX/ECX/RCX by address size.</summary>
    public static void Loop(X86Cpu cpu, ref Op op)
    {
        ulong mask = ulong.MaxValue >> (64 - (op.AddrSize << 3));
        ulong rcx = cpu.Gpr(1);
        ulong count = (rcx - 1) & mask;
        ulong target = RelativeTarget(cpu, ref op);
        bool taken = count != 0 && op.Aux switch
        {
            1 => cpu.ZeroFlag,
            2 => !cpu.ZeroFlag,
            _ => true,
        };
        if (taken)
        {
            cpu.CheckJumpTarget(target);
        }

        // ECX (32-bit address size) is written like any 32-bit register: zero-extended.
        cpu.Gpr(1) = op.AddrSize == 4 ? count : (rcx & ~mask) | count;
        if (taken)
        {
            cpu.Jump(target);
        }
    }

    public static void Jrcxz(X86Cpu cpu, ref Op op)
    {
        ulong mask = ulong.MaxValue >> (64 - (op.AddrSize << 3));
        if ((cpu.Gpr(1) & mask) == 0)
        {
            cpu.Jump(RelativeTarget(cpu, ref op));
        }
    }
}
