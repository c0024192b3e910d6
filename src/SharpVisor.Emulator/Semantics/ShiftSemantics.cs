namespace SharpVisor.Emulator;

/// <summary>
/// Shifts and rotates (ModRM.reg order: ROL, ROR, RCL, RCR, SHL, SHR, SAL, SAR) and SHLD/SHRD,
/// with the flag rules of the Intel SDM. A masked count of zero changes nothing, flags included.
/// </summary>
internal static class ShiftSemantics
{
    public const int Rol = 0;
    public const int Ror = 1;
    public const int Rcl = 2;
    public const int Rcr = 3;
    public const int Shl = 4;
    public const int Shr = 5;
    public const int Sal = 6;
    public const int Sar = 7;

    public static int MaskCount<TSize>(ulong count)
        where TSize : struct, IOperandSize => (int)(count & (TSize.Bits == 64 ? 0x3FUL : 0x1FUL));

    /// <summary>Applies shift <paramref name="kind"/> by an already masked, non-zero count and sets the flags.</summary>
    public static ulong Apply<TSize>(X86Cpu cpu, int kind, ulong a, int count)
        where TSize : struct, IOperandSize
    {
        int bits = TSize.Bits;
        ulong mask = TSize.Mask;
        a &= mask;
        ulong top = (ulong)(bits - 1);
        switch (kind)
        {
            case Rol:
            {
                int c = count & (bits - 1);
                ulong r = c == 0 ? a : ((a << c) | (a >> (bits - c))) & mask;
                ulong cf = r & 1;
                ulong of = ((r >> (int)top) ^ cf) & 1;
                cpu.UpdateStatusFlags(RflagsBits.Carry | RflagsBits.Overflow, cf | (of << 11));
                return r;
            }

            case Ror:
            {
                int c = count & (bits - 1);
                ulong r = c == 0 ? a : ((a >> c) | (a << (bits - c))) & mask;
                ulong cf = (r >> (int)top) & 1;
                ulong of = ((r >> (int)top) ^ (r >> (int)(top - 1))) & 1;
                cpu.UpdateStatusFlags(RflagsBits.Carry | RflagsBits.Overflow, cf | (of << 11));
                return r;
            }

            case Rcl:
            case Rcr:
                return RotateThroughCarry<TSize>(cpu, kind == Rcl, a, count);

            case Shl:
            case Sal:
            {
                ulong r;
                ulong cf;
                if (bits == 64)
                {
                    r = a << count;
                    cf = (a >> (64 - count)) & 1;
                }
                else
                {
                    ulong wide = a << count;
                    r = wide & mask;
                    cf = (wide >> bits) & 1;
                }

                ulong of = ((r >> (int)top) ^ cf) & 1;
                cpu.SetStatusFlags(cf | (of << 11) | X86Cpu.ResultFlags(TSize.SignExtend(r)));
                return r;
            }

            case Shr:
            {
                ulong r = count >= bits ? 0 : a >> count;
                ulong cf = count > bits ? 0 : (a >> (count - 1)) & 1;
                ulong of = (a >> (int)top) & 1;
                cpu.SetStatusFlags(cf | (of << 11) | X86Cpu.ResultFlags(r == 0 ? 0 : TSize.SignExtend(r)));
                return r;
            }

            default:
            {
                long signed = (long)TSize.SignExtend(a);
                ulong r = (ulong)(signed >> Math.Min(count, 63)) & mask;
                ulong cf = (ulong)(signed >> Math.Min(count - 1, 63)) & 1;
                cpu.SetStatusFlags(cf | X86Cpu.ResultFlags(TSize.SignExtend(r)));
                return r;
            }
        }
    }

    private static ulong RotateThroughCarry<TSize>(X86Cpu cpu, bool left, ulong a, int count)
        where TSize : struct, IOperandSize
    {
        int bits = TSize.Bits;
        int c = bits == 8 ? count % 9 : bits == 16 ? count % 17 : count;
        if (c == 0)
        {
            // A count that is a multiple of the rotation width changes nothing, flags included.
            return a;
        }

        ulong cfIn = cpu.CarryFlag ? 1UL : 0;
        ulong top = (ulong)(bits - 1);
        ulong of;
        if (!left)
        {
            of = ((a >> (int)top) ^ cfIn) & 1;
        }
        else
        {
            of = 0;
        }

        ulong r = a;
        ulong cf = cfIn;
        if (c != 0)
        {
            // Rotate the (bits+1)-bit value CF:a.
            int width = bits + 1;
            UInt128 wmask = (UInt128.One << width) - 1;
            UInt128 v = ((UInt128)cfIn << bits) | a;
            v = left ? ((v << c) | (v >> (width - c))) & wmask : ((v >> c) | (v << (width - c))) & wmask;
            r = (ulong)(v & TSize.Mask);
            cf = (ulong)(v >> bits) & 1;
        }

        if (left)
        {
            of = ((r >> (int)top) ^ cf) & 1;
        }

        cpu.UpdateStatusFlags(RflagsBits.Carry | RflagsBits.Overflow, cf | (of << 11));
        return r;
    }

    /// <summary>SHLD (left) / SHRD: shifts <paramref name="a"/> filling from <paramref name="b"/>; masked count non-zero.</summary>
    public static ulong Double<TSize>(X86Cpu cpu, bool left, ulong a, ulong b, int count)
        where TSize : struct, IOperandSize
    {
        int bits = TSize.Bits;
        a &= TSize.Mask;
        b &= TSize.Mask;
        ulong r;
        ulong cf;
        if (bits == 64)
        {
            UInt128 v = left ? ((UInt128)a << 64) | b : ((UInt128)b << 64) | a;
            if (left)
            {
                r = (ulong)((v << count) >> 64);
                cf = (ulong)((v << (count - 1)) >> 127);
            }
            else
            {
                r = (ulong)(v >> count);
                cf = (ulong)(v >> (count - 1)) & 1;
            }
        }
        else if (bits == 32)
        {
            ulong v = left ? (a << 32) | b : (b << 32) | a;
            if (left)
            {
                r = (v << count) >> 32;
                cf = (v << (count - 1)) >> 63;
            }
            else
            {
                r = (uint)(v >> count);
                cf = (v >> (count - 1)) & 1;
            }
        }
        else if (count >= 16 && cpu._amd)
        {
            return DoubleAmd16(cpu, left, a, b, count);
        }
        else
        {
            // 16-bit: counts above 16 shift the 48-bit value a:b:a, as Intel processors do.
            ulong v = (a << 32) | (b << 16) | a;
            if (left)
            {
                r = ((v << count) >> 32) & 0xFFFF;
                cf = ((v << (count - 1)) >> 47) & 1;
            }
            else
            {
                r = (v >> count) & 0xFFFF;
                cf = (v >> (count - 1)) & 1;
            }
        }

        ulong top = (ulong)(bits - 1);
        ulong of = ((r ^ a) >> (int)top) & 1;
        cpu.SetStatusFlags(cf | (of << 11) | X86Cpu.ResultFlags(TSize.SignExtend(r)));
        return r;
    }

    /// <summary>
    /// AMD's 16-bit SHLD/SHRD with a masked count of 16-31, whose result and flags both manuals call
    /// undefined ("If the count is greater than the operand size, the result is undefined"), as AMD
    /// processors compute them (measured on Zen; docs/emulator.md): the result is the source rotated
    /// by count - 16 (left for SHLD, right for SHRD). CF is the last bit shifted out of the destination
    /// at a count of 16 (bit 0 for SHLD, bit 15 for SHRD) and 0 above; OF is CF (16) or 0 (above) for
    /// SHLD and bit 15 XOR bit 14 of the result for SHRD; AF is set; SF, ZF, PF follow the result.
    /// </summary>
    private static ulong DoubleAmd16(X86Cpu cpu, bool left, ulong a, ulong b, int count)
    {
        int rotate = count - 16;
        ulong r = left
            ? ((b << rotate) | (b >> ((16 - rotate) & 15))) & 0xFFFF
            : ((b >> rotate) | (b << ((16 - rotate) & 15))) & 0xFFFF;
        if (rotate == 0)
        {
            r = b;
        }

        ulong cf = count == 16 ? (left ? a & 1 : (a >> 15) & 1) : 0;
        ulong of = left ? cf : ((r >> 15) ^ (r >> 14)) & 1;
        cpu.SetStatusFlags(cf | (of << 11) | RflagsBits.Adjust | X86Cpu.ResultFlags((ulong)(long)(short)r));
        return r;
    }
}
