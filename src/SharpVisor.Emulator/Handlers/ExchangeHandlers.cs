using System.Runtime.CompilerServices;

namespace SharpVisor.Emulator;

/// <summary>XCHG, XADD, CMPXCHG, CMPXCHG8B/16B. Memory forms are atomic on host memory when locked (XCHG always).</summary>
internal static class ExchangeHandlers
{
    // 128-bit compare-exchange has no .NET primitive: CMPXCHG16B serializes on this lock
    // (atomic against other CMPXCHG16B, the only 16-byte atomic access guests make).
    private static readonly object s_wideLock = new();

    public static void XchgRR<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ulong a = TSize.ReadReg(cpu, op.Reg);
        ulong b = TSize.ReadReg(cpu, op.Rm);
        TSize.WriteReg(cpu, op.Reg, b);
        TSize.WriteReg(cpu, op.Rm, a);
    }

    public static void XchgRM<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ref byte p = ref cpu.RmwRef(cpu.Linear(ref op, TSize.Bytes, MemoryAccess.Write), TSize.Bytes);
        ulong value = TSize.ReadReg(cpu, op.Reg);
        ulong old = TSize.Load(ref p);
        while (true)
        {
            ulong seen = TSize.CompareExchange(ref p, value, old);
            if (seen == old)
            {
                break;
            }

            old = seen;
        }

        cpu.CommitRmw();
        TSize.WriteReg(cpu, op.Reg, old);
    }

    /// <summary>XADD r/m, r: Rm (or memory) is the destination, Reg the source.</summary>
    public static void XaddRR<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ulong dest = TSize.ReadReg(cpu, op.Rm);
        ulong src = TSize.ReadReg(cpu, op.Reg);
        ulong sum = dest + src;
        TSize.WriteReg(cpu, op.Reg, dest);
        TSize.WriteReg(cpu, op.Rm, sum);
        AddOp.SetFlags<TSize>(cpu, dest, src, sum);
    }

    public static void XaddRM<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ref byte p = ref cpu.RmwRef(cpu.Linear(ref op, TSize.Bytes, MemoryAccess.Write), TSize.Bytes);
        ulong src = TSize.ReadReg(cpu, op.Reg);
        ulong dest = TSize.Load(ref p);
        if ((op.Flags & OpFlags.Lock) != 0)
        {
            while (true)
            {
                ulong seen = TSize.CompareExchange(ref p, dest + src, dest);
                if (seen == dest)
                {
                    break;
                }

                dest = seen;
            }
        }
        else
        {
            TSize.Store(ref p, dest + src);
        }

        cpu.CommitRmw();
        TSize.WriteReg(cpu, op.Reg, dest);
        AddOp.SetFlags<TSize>(cpu, dest, src, dest + src);
    }

    /// <summary>CMPXCHG r/m, r: compares the accumulator with Rm (or memory); Reg is the source.</summary>
    public static void CmpxchgRR<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ulong acc = TSize.ReadReg(cpu, 0);
        ulong dest = TSize.ReadReg(cpu, op.Rm);
        if ((acc & TSize.Mask) == dest)
        {
            TSize.WriteReg(cpu, op.Rm, TSize.ReadReg(cpu, op.Reg));
        }
        else
        {
            TSize.WriteReg(cpu, 0, dest);
        }

        CmpOp.SetFlags<TSize>(cpu, acc, dest, acc - dest);
    }

    public static void CmpxchgRM<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ref byte p = ref cpu.RmwRef(cpu.Linear(ref op, TSize.Bytes, MemoryAccess.Write), TSize.Bytes);
        ulong acc = TSize.ReadReg(cpu, 0);
        ulong src = TSize.ReadReg(cpu, op.Reg);
        ulong dest;
        if ((op.Flags & OpFlags.Lock) != 0)
        {
            dest = TSize.CompareExchange(ref p, src, acc);
        }
        else
        {
            // The destination is written either way (with its own value on failure).
            dest = TSize.Load(ref p);
            TSize.Store(ref p, dest == acc ? src : dest);
        }

        cpu.CommitRmw();
        if (dest != acc)
        {
            TSize.WriteReg(cpu, 0, dest);
        }

        CmpOp.SetFlags<TSize>(cpu, acc, dest, acc - dest);
    }

    public static void Cmpxchg8b(X86Cpu cpu, ref Op op)
    {
        ref byte p = ref cpu.RmwRef(cpu.Linear(ref op, 8, MemoryAccess.Write), 8);
        ulong expected = ((cpu.Gpr(2) & 0xFFFF_FFFF) << 32) | (cpu.Gpr(0) & 0xFFFF_FFFF);
        ulong replacement = ((cpu.Gpr(1) & 0xFFFF_FFFF) << 32) | (cpu.Gpr(3) & 0xFFFF_FFFF);
        ulong seen;
        if ((op.Flags & OpFlags.Lock) != 0)
        {
            seen = Size64.CompareExchange(ref p, replacement, expected);
        }
        else
        {
            seen = Size64.Load(ref p);
            Size64.Store(ref p, seen == expected ? replacement : seen);
        }

        cpu.CommitRmw();
        bool equal = seen == expected;
        if (!equal)
        {
            cpu.Gpr(0) = (uint)seen;
            cpu.Gpr(2) = seen >> 32;
        }

        cpu.UpdateStatusFlags(RflagsBits.Zero, equal ? RflagsBits.Zero : 0);
    }

    public static void Cmpxchg16b(X86Cpu cpu, ref Op op)
    {
        // The alignment check comes before the canonical/segment checks.
        if (((cpu.EffectiveAddress(ref op) + cpu._segBase[op.Seg]) & 15) != 0)
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }

        ulong linear = cpu.Linear(ref op, 16, MemoryAccess.Write);

        ref byte p = ref cpu.RmwRef(linear, 16);
        bool equal;
        ulong lo;
        ulong hi;
        lock (s_wideLock)
        {
            lo = Unsafe.ReadUnaligned<ulong>(ref p);
            hi = Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, 8));
            equal = lo == cpu.Gpr(0) && hi == cpu.Gpr(2);
            if (equal)
            {
                Unsafe.WriteUnaligned(ref p, cpu.Gpr(3));
                Unsafe.WriteUnaligned(ref Unsafe.Add(ref p, 8), cpu.Gpr(1));
            }
            else
            {
                Unsafe.WriteUnaligned(ref p, lo);
                Unsafe.WriteUnaligned(ref Unsafe.Add(ref p, 8), hi);
            }
        }

        cpu.CommitRmw();
        if (!equal)
        {
            cpu.Gpr(0) = lo;
            cpu.Gpr(2) = hi;
        }

        cpu.UpdateStatusFlags(RflagsBits.Zero, equal ? RflagsBits.Zero : 0);
    }
}
