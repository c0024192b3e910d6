namespace SharpVisor.Emulator;

/// <summary>MUL, IMUL (one, two and three operands), DIV, IDIV.</summary>
internal static class MulDivHandlers
{
    // One-operand forms: the source is the rm register (Rm) or memory.
    private static ulong Source<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize =>
        (op.Flags & OpFlags.Memory) != 0
            ? TSize.Read(cpu, cpu.Linear(ref op, TSize.Bytes, MemoryAccess.Read))
            : TSize.ReadReg(cpu, op.Rm);

    /// <summary>Flags after multiplication: CF = OF = overflow; SF/ZF/PF (architecturally undefined) from the low result.</summary>
    private static void SetMulFlags<TSize>(X86Cpu cpu, bool overflow, ulong low)
        where TSize : struct, IOperandSize =>
        SetMulFlagsOf(cpu, overflow, TSize.SignExtend(low));

    /// <summary>The flags of a multiplication from its overflow and its low result sign-extended (tier 1's inline IMUL calls this too).</summary>
    internal static void SetMulFlagsOf(X86Cpu cpu, bool overflow, ulong signExtendedLow) =>
        cpu.SetStatusFlags((overflow ? RflagsBits.Carry | RflagsBits.Overflow : 0) | X86Cpu.ResultFlags(signExtendedLow));

    public static void Mul<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ulong b = Source<TSize>(cpu, ref op);
        ulong a = TSize.ReadReg(cpu, 0);
        ulong low;
        ulong high;
        if (TSize.Bits == 64)
        {
            high = Math.BigMul(a, b, out low);
        }
        else
        {
            ulong product = a * b;
            low = product & TSize.Mask;
            high = product >> TSize.Bits;
        }

        StoreWide<TSize>(cpu, low, high);
        SetMulFlags<TSize>(cpu, high != 0, low);
    }

    public static void Imul1<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        long b = (long)TSize.SignExtend(Source<TSize>(cpu, ref op));
        long a = (long)TSize.SignExtend(TSize.ReadReg(cpu, 0));
        ulong low;
        ulong high;
        bool overflow;
        if (TSize.Bits == 64)
        {
            long h = Math.BigMul(a, b, out long l);
            low = (ulong)l;
            high = (ulong)h;
            overflow = h != (l >> 63);
        }
        else
        {
            long product = a * b;
            low = (ulong)product & TSize.Mask;
            high = ((ulong)product >> TSize.Bits) & TSize.Mask;
            overflow = product != (long)TSize.SignExtend((ulong)product);
        }

        StoreWide<TSize>(cpu, low, high);
        SetMulFlags<TSize>(cpu, overflow, low);
    }

    private static void StoreWide<TSize>(X86Cpu cpu, ulong low, ulong high)
        where TSize : struct, IOperandSize
    {
        if (TSize.Bits == 8)
        {
            Size16.WriteReg(cpu, 0, (high << 8) | low);
        }
        else
        {
            TSize.WriteReg(cpu, 0, low);
            TSize.WriteReg(cpu, 2 * 8, high);
        }
    }

    /// <summary>IMUL r, r/m and IMUL r, r/m, imm (Imm, with Aux = 1 for the three-operand form).</summary>
    public static void Imul2<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        long b = (long)TSize.SignExtend(Source<TSize>(cpu, ref op));
        long a = (long)TSize.SignExtend(op.Aux != 0 ? op.Imm : TSize.ReadReg(cpu, op.Reg));
        ulong low;
        bool overflow;
        if (TSize.Bits == 64)
        {
            long h = Math.BigMul(a, b, out long l);
            low = (ulong)l;
            overflow = h != (l >> 63);
        }
        else
        {
            long product = a * b;
            low = (ulong)product & TSize.Mask;
            overflow = product != (long)TSize.SignExtend((ulong)product);
        }

        TSize.WriteReg(cpu, op.Reg, low);
        SetMulFlags<TSize>(cpu, overflow, low);
    }

    public static void Div<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ulong divisor = Source<TSize>(cpu, ref op);
        if (divisor == 0)
        {
            throw new CpuException(ExceptionVector.DivideError);
        }

        if (TSize.Bits == 8)
        {
            ulong dividend = Size16.ReadReg(cpu, 0);
            ulong q = dividend / divisor;
            if (q > 0xFF)
            {
                throw new CpuException(ExceptionVector.DivideError);
            }

            Size16.WriteReg(cpu, 0, ((dividend % divisor) << 8) | q);
        }
        else if (TSize.Bits == 64)
        {
            ulong high = cpu.Gpr(2);
            if (high >= divisor)
            {
                throw new CpuException(ExceptionVector.DivideError);
            }

            UInt128 dividend = ((UInt128)high << 64) | cpu.Gpr(0);
            (UInt128 q, UInt128 r) = UInt128.DivRem(dividend, divisor);
            cpu.Gpr(0) = (ulong)q;
            cpu.Gpr(2) = (ulong)r;
        }
        else
        {
            ulong dividend = (TSize.ReadReg(cpu, 2 * 8) << TSize.Bits) | TSize.ReadReg(cpu, 0);
            ulong q = dividend / divisor;
            if (q > TSize.Mask)
            {
                throw new CpuException(ExceptionVector.DivideError);
            }

            TSize.WriteReg(cpu, 0, q);
            TSize.WriteReg(cpu, 2 * 8, dividend % divisor);
        }
    }

    public static void Idiv<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        long divisor = (long)TSize.SignExtend(Source<TSize>(cpu, ref op));
        if (divisor == 0)
        {
            throw new CpuException(ExceptionVector.DivideError);
        }

        if (TSize.Bits == 64)
        {
            Int128 dividend = (Int128)(((UInt128)cpu.Gpr(2) << 64) | cpu.Gpr(0));
            if (divisor == -1 && dividend == Int128.MinValue)
            {
                throw new CpuException(ExceptionVector.DivideError);
            }

            Int128 q = dividend / divisor;
            if (q > long.MaxValue || q < long.MinValue)
            {
                throw new CpuException(ExceptionVector.DivideError);
            }

            cpu.Gpr(0) = (ulong)(long)q;
            cpu.Gpr(2) = (ulong)(long)(dividend - (q * divisor));
            return;
        }

        long dividend64;
        if (TSize.Bits == 8)
        {
            dividend64 = (short)Size16.ReadReg(cpu, 0);
        }
        else
        {
            ulong raw = (TSize.ReadReg(cpu, 2 * 8) << TSize.Bits) | TSize.ReadReg(cpu, 0);
            dividend64 = TSize.Bits == 16 ? (int)raw : (long)raw;
        }

        if (divisor == -1 && dividend64 == long.MinValue)
        {
            throw new CpuException(ExceptionVector.DivideError);
        }

        long quotient = dividend64 / divisor;
        long remainder = dividend64 % divisor;
        if (quotient != (long)TSize.SignExtend((ulong)quotient))
        {
            throw new CpuException(ExceptionVector.DivideError);
        }

        if (TSize.Bits == 8)
        {
            Size16.WriteReg(cpu, 0, (((ulong)remainder & 0xFF) << 8) | ((ulong)quotient & 0xFF));
        }
        else
        {
            TSize.WriteReg(cpu, 0, (ulong)quotient);
            TSize.WriteReg(cpu, 2 * 8, (ulong)remainder);
        }
    }
}
