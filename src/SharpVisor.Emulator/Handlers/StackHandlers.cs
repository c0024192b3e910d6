namespace SharpVisor.Emulator;

/// <summary>PUSH, POP, PUSHF/POPF, PUSHA/POPA, ENTER, LEAVE.</summary>
internal static class StackHandlers
{
    public static void PushR<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize =>
        cpu.Push<TSize>(TSize.ReadReg(cpu, op.Reg));

    public static void PushM<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize =>
        cpu.Push<TSize>(TSize.Read(cpu, cpu.Linear(ref op, TSize.Bytes, MemoryAccess.Read)));

    public static void PushI<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize =>
        cpu.Push<TSize>(op.Imm);

    public static void PopR<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ulong value = cpu.Pop<TSize>();
        TSize.WriteReg(cpu, op.Reg, value);
    }

    public static void PopM<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        // The destination address is computed with the incremented RSP; a fault restores it.
        ulong rsp = cpu.Gpr(X86Cpu.Rsp);
        ulong value = cpu.PeekStack<TSize>(0);
        cpu.Gpr(X86Cpu.Rsp) = cpu.StackAdd(rsp, (ulong)TSize.Bytes);
        try
        {
            TSize.Write(cpu, cpu.Linear(ref op, TSize.Bytes, MemoryAccess.Write), value);
        }
        catch (CpuException)
        {
            cpu.Gpr(X86Cpu.Rsp) = rsp;
            throw;
        }
    }

    public static void Pushf<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        if (cpu._mode == CpuMode.Virtual8086 && cpu.Iopl < 3)
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }

        // The image on the stack never shows VM or RF.
        cpu.Push<TSize>(cpu.GetRflags() & ~(RflagsBits.Virtual8086 | RflagsBits.Resume));
    }

    public static void Popf<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        if (cpu._mode == CpuMode.Virtual8086 && cpu.Iopl < 3)
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }

        ulong value = cpu.Pop<TSize>();
        cpu.WriteFlagsFromPopf(value, TSize.Mask);
        cpu._exitBlock = X86Cpu.ExitAfter;
    }

    public static void Pusha<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ulong rsp = cpu.Gpr(X86Cpu.Rsp);
        ulong n = (ulong)TSize.Bytes;
        ulong mask = cpu._stackMask;
        for (int i = 0; i < 8; i++)
        {
            ulong value = i == X86Cpu.Rsp ? rsp : cpu.Gpr(i);
            ulong at = (rsp - (n * (ulong)(i + 1))) & mask;
            TSize.Write(cpu, cpu.SegmentLinear(X86Cpu.SegSs, at, TSize.Bytes, MemoryAccess.Write), value);
        }

        cpu.Gpr(X86Cpu.Rsp) = (rsp & ~mask) | ((rsp - (8 * n)) & mask);
    }

    public static void Popa<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ulong rsp = cpu.Gpr(X86Cpu.Rsp);
        ulong n = (ulong)TSize.Bytes;
        ulong mask = cpu._stackMask;
        Span<ulong> values = stackalloc ulong[8];
        for (int i = 0; i < 8; i++)
        {
            ulong at = (rsp + (n * (ulong)(7 - i))) & mask;
            values[i] = TSize.Read(cpu, cpu.SegmentLinear(X86Cpu.SegSs, at, TSize.Bytes, MemoryAccess.Read));
        }

        for (int i = 0; i < 8; i++)
        {
            if (i != X86Cpu.Rsp)
            {
                TSize.WriteReg(cpu, i * 8, values[i]);
            }
        }

        cpu.Gpr(X86Cpu.Rsp) = (rsp & ~mask) | ((rsp + (8 * n)) & mask);
    }

    /// <summary>ENTER imm16, imm8: Imm = frame size, Aux = nesting level.</summary>
    public static void Enter<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ulong mask = cpu._stackMask;
        ulong n = (ulong)TSize.Bytes;
        ulong rsp = cpu.Gpr(X86Cpu.Rsp);
        ulong rbp = cpu.Gpr(X86Cpu.Rbp);
        int level = op.Aux & 31;

        // Work on copies: a fault leaves RSP and RBP untouched.
        rsp = (rsp & ~mask) | ((rsp - n) & mask);
        TSize.Write(cpu, cpu.SegmentLinear(X86Cpu.SegSs, rsp & mask, TSize.Bytes, MemoryAccess.Write), rbp);
        ulong frame = rsp;
        if (level > 0)
        {
            for (int i = 1; i < level; i++)
            {
                rbp = (rbp & ~mask) | ((rbp - n) & mask);
                ulong value = TSize.Read(cpu, cpu.SegmentLinear(X86Cpu.SegSs, rbp & mask, TSize.Bytes, MemoryAccess.Read));
                rsp = (rsp & ~mask) | ((rsp - n) & mask);
                TSize.Write(cpu, cpu.SegmentLinear(X86Cpu.SegSs, rsp & mask, TSize.Bytes, MemoryAccess.Write), value);
            }

            rsp = (rsp & ~mask) | ((rsp - n) & mask);
            TSize.Write(cpu, cpu.SegmentLinear(X86Cpu.SegSs, rsp & mask, TSize.Bytes, MemoryAccess.Write), frame);
        }

        rsp = (rsp & ~mask) | ((rsp - op.Imm) & mask);

        // The new stack top must be writable (a #PF/#SS here is raised before anything commits).
        cpu.ProbeWrite(cpu.SegmentLinear(X86Cpu.SegSs, rsp & mask, 1, MemoryAccess.Write), 1);
        TSize.WriteReg(cpu, X86Cpu.Rbp * 8, frame);
        cpu.Gpr(X86Cpu.Rsp) = rsp;
    }

    public static void Leave<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ulong mask = cpu._stackMask;
        ulong rsp = (cpu.Gpr(X86Cpu.Rsp) & ~mask) | (cpu.Gpr(X86Cpu.Rbp) & mask);
        ulong value = TSize.Read(cpu, cpu.SegmentLinear(X86Cpu.SegSs, rsp & mask, TSize.Bytes, MemoryAccess.Read));
        cpu.Gpr(X86Cpu.Rsp) = cpu.StackAdd(rsp, (ulong)TSize.Bytes);
        TSize.WriteReg(cpu, X86Cpu.Rbp * 8, value);
    }
}
