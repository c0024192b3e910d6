using System.Numerics;

namespace SharpVisor.Emulator;

/// <summary>BT/BTS/BTR/BTC (Aux = 0..3), BSF, BSR, TZCNT, LZCNT, POPCNT.</summary>
internal static class BitHandlers
{
    public const int Bt = 0;
    public const int Bts = 1;
    public const int Btr = 2;
    public const int Btc = 3;

    private static ulong Modify(int kind, ulong value, ulong bit) => kind switch
    {
        Bts => value | bit,
        Btr => value & ~bit,
        Btc => value ^ bit,
        _ => value,
    };

    private static void SetCarry(X86Cpu cpu, bool set) =>
        cpu.UpdateStatusFlags(RflagsBits.Carry, set ? RflagsBits.Carry : 0);

    /// <summary>Register destination; the bit offset is the Rm register (Flags without Memory) or Imm.</summary>
    public static void RegisterTarget<TSize>(X86Cpu cpu, ref Op op, ulong offset)
        where TSize : struct, IOperandSize
    {
        ulong bit = 1UL << (int)(offset & (ulong)(TSize.Bits - 1));
        ulong value = TSize.ReadReg(cpu, op.Reg);
        if (op.Aux != Bt)
        {
            TSize.WriteReg(cpu, op.Reg, Modify(op.Aux, value, bit));
        }

        SetCarry(cpu, (value & bit) != 0);
    }

    public static void RR<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize => RegisterTarget<TSize>(cpu, ref op, TSize.ReadReg(cpu, op.Rm));

    public static void RI<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize => RegisterTarget<TSize>(cpu, ref op, op.Imm);

    /// <summary>Memory destination with an immediate offset (taken modulo the operand size).</summary>
    public static void MI<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize =>
        MemoryTarget<TSize>(cpu, ref op, cpu.EffectiveAddress(ref op), op.Imm & (ulong)(TSize.Bits - 1), locked: false);

    public static void MILock<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize =>
        MemoryTarget<TSize>(cpu, ref op, cpu.EffectiveAddress(ref op), op.Imm & (ulong)(TSize.Bits - 1), locked: true);

    /// <summary>Memory destination with a register offset: a signed bit string offset that may leave the operand.</summary>
    public static void MR<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize => MemoryRegisterOffset<TSize>(cpu, ref op, locked: false);

    public static void MRLock<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize => MemoryRegisterOffset<TSize>(cpu, ref op, locked: true);

    private static void MemoryRegisterOffset<TSize>(X86Cpu cpu, ref Op op, bool locked)
        where TSize : struct, IOperandSize
    {
        long offset = (long)TSize.SignExtend(TSize.ReadReg(cpu, op.Rm));
        int shift = BitOperations.Log2((uint)TSize.Bits);
        ulong displacement = (ulong)((offset >> shift) * TSize.Bytes);
        ulong ea = (cpu.EffectiveAddress(ref op) + displacement) & (ulong.MaxValue >> (64 - (op.AddrSize << 3)));
        MemoryTarget<TSize>(cpu, ref op, ea, (ulong)offset & (ulong)(TSize.Bits - 1), locked);
    }

    private static void MemoryTarget<TSize>(X86Cpu cpu, ref Op op, ulong ea, ulong bitIndex, bool locked)
        where TSize : struct, IOperandSize
    {
        ulong bit = 1UL << (int)bitIndex;
        if (op.Aux == Bt)
        {
            ulong v = TSize.Read(cpu, cpu.SegmentLinear(op.Seg, ea, TSize.Bytes, MemoryAccess.Read));
            SetCarry(cpu, (v & bit) != 0);
            return;
        }

        ref byte p = ref cpu.RmwRef(cpu.SegmentLinear(op.Seg, ea, TSize.Bytes, MemoryAccess.Write), TSize.Bytes);
        ulong value = TSize.Load(ref p);
        if (locked)
        {
            while (true)
            {
                ulong seen = TSize.CompareExchange(ref p, Modify(op.Aux, value, bit), value);
                if (seen == value)
                {
                    break;
                }

                value = seen;
            }
        }
        else
        {
            TSize.Store(ref p, Modify(op.Aux, value, bit));
        }

        cpu.CommitRmw();
        SetCarry(cpu, (value & bit) != 0);
    }

    private static ulong Source<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize =>
        (op.Flags & OpFlags.Memory) != 0
            ? TSize.Read(cpu, cpu.Linear(ref op, TSize.Bytes, MemoryAccess.Read))
            : TSize.ReadReg(cpu, op.Rm);

    /// <summary>BSF: a zero source sets ZF and leaves the destination unchanged.</summary>
    public static void Bsf<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ulong src = Source<TSize>(cpu, ref op);
        if (src == 0)
        {
            cpu.UpdateStatusFlags(RflagsBits.Zero, RflagsBits.Zero);
            return;
        }

        TSize.WriteReg(cpu, op.Reg, (ulong)BitOperations.TrailingZeroCount(src));
        cpu.UpdateStatusFlags(RflagsBits.Zero, 0);
    }

    public static void Bsr<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ulong src = Source<TSize>(cpu, ref op);
        if (src == 0)
        {
            cpu.UpdateStatusFlags(RflagsBits.Zero, RflagsBits.Zero);
            return;
        }

        TSize.WriteReg(cpu, op.Reg, (ulong)(63 - BitOperations.LeadingZeroCount(src)));
        cpu.UpdateStatusFlags(RflagsBits.Zero, 0);
    }

    public static void Tzcnt<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ulong src = Source<TSize>(cpu, ref op);
        ulong result = src == 0 ? (ulong)TSize.Bits : (ulong)BitOperations.TrailingZeroCount(src);
        TSize.WriteReg(cpu, op.Reg, result);
        cpu.UpdateStatusFlags(RflagsBits.Carry | RflagsBits.Zero, (src == 0 ? RflagsBits.Carry : 0) | (result == 0 ? RflagsBits.Zero : 0));
    }

    public static void Lzcnt<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ulong src = Source<TSize>(cpu, ref op);
        ulong result = (ulong)(BitOperations.LeadingZeroCount(src) - (64 - TSize.Bits));
        TSize.WriteReg(cpu, op.Reg, result);
        cpu.UpdateStatusFlags(RflagsBits.Carry | RflagsBits.Zero, (src == 0 ? RflagsBits.Carry : 0) | (result == 0 ? RflagsBits.Zero : 0));
    }

    public static void Popcnt<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ulong src = Source<TSize>(cpu, ref op);
        TSize.WriteReg(cpu, op.Reg, (ulong)BitOperations.PopCount(src));
        cpu.SetStatusFlags(src == 0 ? RflagsBits.Zero : 0);
    }
}
