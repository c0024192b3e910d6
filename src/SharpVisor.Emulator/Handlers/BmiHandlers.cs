using System.Numerics;
using System.Runtime.Intrinsics.X86;

namespace SharpVisor.Emulator;

/// <summary>
/// BMI1, BMI2 and ADX: Reg = destination, Rm (or memory) = the r/m source, Aux = the VEX.vvvv
/// register (byte offset), Imm = immediate.
/// </summary>
internal static class BmiHandlers
{
    private static ulong Source<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize =>
        (op.Flags & OpFlags.Memory) != 0
            ? TSize.Read(cpu, cpu.Linear(ref op, TSize.Bytes, MemoryAccess.Read))
            : TSize.ReadReg(cpu, op.Rm);

    private static ulong Vvvv<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize => TSize.ReadReg(cpu, op.Aux);

    /// <summary>SF and ZF of a result plus the given CF; OF cleared (AF/PF undefined: cleared).</summary>
    private static void Flags<TSize>(X86Cpu cpu, ulong result, bool carry, bool zeroFlag = true)
        where TSize : struct, IOperandSize
    {
        ulong f = (result & TSize.SignBit) != 0 ? RflagsBits.Sign : 0;
        if (zeroFlag && (result & TSize.Mask) == 0)
        {
            f |= RflagsBits.Zero;
        }

        f |= carry ? RflagsBits.Carry : 0;
        cpu.SetStatusFlags(f);
    }

    public static void Andn<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ulong r = ~Vvvv<TSize>(cpu, ref op) & Source<TSize>(cpu, ref op) & TSize.Mask;
        TSize.WriteReg(cpu, op.Reg, r);
        Flags<TSize>(cpu, r, false);
    }

    public static void Bextr<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ulong src = Source<TSize>(cpu, ref op);
        ulong control = Vvvv<TSize>(cpu, ref op);
        int start = (int)(control & 0xFF);
        int length = (int)((control >> 8) & 0xFF);
        ulong r = start >= TSize.Bits ? 0 : src >> start;
        if (length < 64)
        {
            r &= (1UL << length) - 1;
        }

        TSize.WriteReg(cpu, op.Reg, r);
        cpu.SetStatusFlags(r == 0 ? RflagsBits.Zero : 0);
    }

    public static void Blsi<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ulong src = Source<TSize>(cpu, ref op);
        ulong r = src & (0 - src) & TSize.Mask;
        TSize.WriteReg(cpu, op.Reg, r);
        Flags<TSize>(cpu, r, src != 0);
    }

    public static void Blsmsk<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ulong src = Source<TSize>(cpu, ref op);
        ulong r = (src ^ (src - 1)) & TSize.Mask;
        TSize.WriteReg(cpu, op.Reg, r);
        Flags<TSize>(cpu, r, src == 0, zeroFlag: false);
    }

    public static void Blsr<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ulong src = Source<TSize>(cpu, ref op);
        ulong r = src & (src - 1) & TSize.Mask;
        TSize.WriteReg(cpu, op.Reg, r);
        Flags<TSize>(cpu, r, src == 0);
    }

    public static void Bzhi<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ulong src = Source<TSize>(cpu, ref op);
        int n = (int)(Vvvv<TSize>(cpu, ref op) & 0xFF);
        ulong r = n < TSize.Bits ? src & ((1UL << n) - 1) : src;
        TSize.WriteReg(cpu, op.Reg, r);
        Flags<TSize>(cpu, r, n > TSize.Bits - 1);
    }

    /// <summary>MULX: Reg = high half, Aux = low half, rDX × r/m; no flags.</summary>
    public static void Mulx<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ulong src = Source<TSize>(cpu, ref op);
        ulong a = TSize.ReadReg(cpu, 2 * 8);
        ulong high;
        ulong low;
        if (TSize.Bits == 64)
        {
            high = Math.BigMul(a, src, out low);
        }
        else
        {
            ulong p = a * src;
            low = (uint)p;
            high = p >> 32;
        }

        TSize.WriteReg(cpu, op.Aux, low);
        TSize.WriteReg(cpu, op.Reg, high);
    }

    public static void Pdep<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ulong mask = Source<TSize>(cpu, ref op);
        ulong value = Vvvv<TSize>(cpu, ref op);
        TSize.WriteReg(cpu, op.Reg, Bmi2.X64.IsSupported ? Bmi2.X64.ParallelBitDeposit(value, mask) : SoftDeposit(value, mask));
    }

    public static void Pext<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ulong mask = Source<TSize>(cpu, ref op);
        ulong value = Vvvv<TSize>(cpu, ref op);
        TSize.WriteReg(cpu, op.Reg, Bmi2.X64.IsSupported ? Bmi2.X64.ParallelBitExtract(value, mask) : SoftExtract(value, mask));
    }

    private static ulong SoftDeposit(ulong value, ulong mask)
    {
        ulong r = 0;
        for (ulong bit = 1; mask != 0; bit <<= 1)
        {
            ulong lowest = mask & (0 - mask);
            if ((value & bit) != 0)
            {
                r |= lowest;
            }

            mask &= mask - 1;
        }

        return r;
    }

    private static ulong SoftExtract(ulong value, ulong mask)
    {
        ulong r = 0;
        for (ulong bit = 1; mask != 0; bit <<= 1)
        {
            ulong lowest = mask & (0 - mask);
            if ((value & lowest) != 0)
            {
                r |= bit;
            }

            mask &= mask - 1;
        }

        return r;
    }

    public static void Rorx<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ulong src = Source<TSize>(cpu, ref op);
        int count = (int)(op.Imm & (ulong)(TSize.Bits - 1));
        ulong r = count == 0 ? src : ((src >> count) | (src << (TSize.Bits - count))) & TSize.Mask;
        TSize.WriteReg(cpu, op.Reg, r);
    }

    /// <summary>SARX/SHLX/SHRX (Imm = 0, 1, 2): count from vvvv, no flags.</summary>
    public static void ShiftX<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ulong src = Source<TSize>(cpu, ref op);
        int count = (int)(Vvvv<TSize>(cpu, ref op) & (ulong)(TSize.Bits - 1));
        ulong r = op.Imm switch
        {
            0 => (ulong)((long)TSize.SignExtend(src) >> count),
            1 => src << count,
            _ => src >> count,
        };
        TSize.WriteReg(cpu, op.Reg, r & TSize.Mask);
    }

    /// <summary>ADCX (Aux = 0: carry in/out through CF) and ADOX (Aux = 1: through OF); other flags kept.</summary>
    public static void Adx<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ulong src = Source<TSize>(cpu, ref op);
        ulong a = TSize.ReadReg(cpu, op.Reg);
        bool useOverflow = op.Aux == 1;
        ulong carryIn = (useOverflow ? cpu.OverflowFlag : cpu.CarryFlag) ? 1UL : 0;
        ulong r;
        bool carryOut;
        if (TSize.Bits == 64)
        {
            r = a + src + carryIn;
            carryOut = r < a || (carryIn != 0 && r == a);
        }
        else
        {
            ulong wide = (a & TSize.Mask) + (src & TSize.Mask) + carryIn;
            r = wide;
            carryOut = (wide >> TSize.Bits) != 0;
        }

        TSize.WriteReg(cpu, op.Reg, r);
        ulong flag = useOverflow ? RflagsBits.Overflow : RflagsBits.Carry;
        cpu.UpdateStatusFlags(flag, carryOut ? flag : 0);
    }

    /// <summary>CRC32 r32/r64, r/m8/16/32/64 (OpSize = source size).</summary>
    public static void Crc32(X86Cpu cpu, ref Op op)
    {
        ulong data;
        int size = op.OpSize;
        if ((op.Flags & OpFlags.Memory) != 0)
        {
            ulong linear = cpu.Linear(ref op, size, MemoryAccess.Read);
            data = size switch
            {
                1 => cpu.Read8(linear),
                2 => cpu.Read16(linear),
                4 => cpu.Read32(linear),
                _ => cpu.Read64(linear),
            };
        }
        else
        {
            data = Size64.ReadReg(cpu, op.Rm);
        }

        uint crc = (uint)Size32.ReadReg(cpu, op.Reg);
        Size64.WriteReg(cpu, op.Reg, Crc32C(crc, data, size));
    }

    /// <summary>CRC-32C (Castagnoli, reflected) of the low <paramref name="size"/> bytes of <paramref name="data"/>, as the CRC32 instruction computes it.</summary>
    public static uint Crc32C(uint crc, ulong data, int size)
    {
        if (Sse42.X64.IsSupported)
        {
            return size switch
            {
                1 => Sse42.Crc32(crc, (byte)data),
                2 => Sse42.Crc32(crc, (ushort)data),
                4 => Sse42.Crc32(crc, (uint)data),
                _ => (uint)Sse42.X64.Crc32(crc, data),
            };
        }

        for (int i = 0; i < size * 8; i++)
        {
            bool bit = ((crc ^ (uint)(data >> i)) & 1) != 0;
            crc = (crc >> 1) ^ (bit ? 0x82F6_3B78u : 0);
        }

        return crc;
    }
}
