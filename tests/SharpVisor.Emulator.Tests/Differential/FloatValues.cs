namespace SharpVisor.Emulator.Tests.Differential;

/// <summary>Floating-point bit patterns that exercise rounding, special values and exception flags.</summary>
internal static class FloatValues
{
    private static readonly uint[] s_singles =
    [
        0x0000_0000, 0x8000_0000, 0x3F80_0000, 0xBF80_0000, 0x7F80_0000, 0xFF80_0000, 0x7FC0_0000, 0xFFC0_0000, 0x7FA0_0000,
        0xFF80_0001, 0x0000_0001, 0x8000_0001, 0x007F_FFFF, 0x0080_0000, 0x8080_0000, 0x7F7F_FFFF, 0xFF7F_FFFF, 0x3F00_0000,
        0x4F00_0000, 0xCF00_0000, 0x5F00_0000, 0xDF00_0000, 0x3EAA_AAAB, 0x4B00_0000, 0x3FC0_0000, 0x3F40_0000, 0x0040_0000,
        0x0C80_0000, 0x4E80_0000, 0x2000_0000, 0x6000_0000,
    ];

    private static readonly ulong[] s_doubles =
    [
        0, 0x8000_0000_0000_0000, 0x3FF0_0000_0000_0000, 0xBFF0_0000_0000_0000, 0x7FF0_0000_0000_0000, 0xFFF0_0000_0000_0000,
        0x7FF8_0000_0000_0000, 0xFFF8_0000_0000_0000, 0x7FF4_0000_0000_0000, 0xFFF0_0000_0000_0001, 1, 0x8000_0000_0000_0001,
        0x000F_FFFF_FFFF_FFFF, 0x0010_0000_0000_0000, 0x7FEF_FFFF_FFFF_FFFF, 0x3FE0_0000_0000_0000, 0x41E0_0000_0000_0000,
        0xC1E0_0000_0000_0000, 0x43E0_0000_0000_0000, 0xC3E0_0000_0000_0000, 0x3FD5_5555_5555_5555, 0x4330_0000_0000_0000,
        0x41DF_FFFF_FFC0_0000, 0x0008_0000_0000_0000, 0x2000_0000_0000_0000, 0x6000_0000_0000_0000, 0x3690_0000_0000_0000,
    ];

    public static uint Single(CaseRandom r)
    {
        switch (r.Below(8))
        {
            case 0:
            case 1:
                return s_singles[r.Below(s_singles.Length)];
            case 2:
                // Small integers and halves (exact conversions, ties in rounding).
                return BitConverter.SingleToUInt32Bits((r.Below(2001) - 1000) / (r.Chance(0.5) ? 1f : 2f));
            case 3:
                // Denormals and values near the underflow threshold.
                return (uint)(r.Next() & 0x80FF_FFFF) & (r.Chance(0.5) ? 0x807F_FFFFu : 0x80FF_FFFFu);
            case 4:
                // Large magnitudes near overflow.
                return (uint)(r.Next() & 0x80FF_FFFF) | 0x7E00_0000u;
            default:
                // Ordinary numbers with random significands and modest exponents.
                return (uint)(r.Next() & 0x807F_FFFF) | ((uint)(100 + r.Below(55)) << 23);
        }
    }

    public static ulong Double(CaseRandom r)
    {
        switch (r.Below(8))
        {
            case 0:
            case 1:
                return s_doubles[r.Below(s_doubles.Length)];
            case 2:
                return BitConverter.DoubleToUInt64Bits((r.Below(2_000_001) - 1_000_000) / (r.Chance(0.5) ? 1.0 : 2.0));
            case 3:
                return r.Next() & (r.Chance(0.5) ? 0x800F_FFFF_FFFF_FFFFUL : 0x801F_FFFF_FFFF_FFFFUL);
            case 4:
                return (r.Next() & 0x801F_FFFF_FFFF_FFFFUL) | 0x7FC0_0000_0000_0000UL;
            case 5:
                // Values that round when narrowed to single (and overflow/underflow it).
                return (r.Next() & 0x800F_FFFF_FFFF_FFFFUL) | ((ulong)(0x380 - 40 + r.Below(80 + 0x100)) << 52);
            default:
                return (r.Next() & 0x800F_FFFF_FFFF_FFFFUL) | ((ulong)(900 + r.Below(250)) << 52);
        }
    }
}

/// <summary>x87 extended-precision bit patterns.</summary>
internal static class ExtendedValues
{
    /// <summary>(significand, sign/exponent) of an interesting extended value.</summary>
    public static (ulong Significand, ushort SignExponent) Next(CaseRandom r)
    {
        ushort sign = r.Chance(0.5) ? (ushort)0x8000 : (ushort)0;
        switch (r.Below(12))
        {
            case 0: return (0, sign); // zero
            case 1: return (1UL << 63, (ushort)(sign | 0x7FFF)); // infinity
            case 2: return (0xC000_0000_0000_0000UL | (r.Next() >> 2), (ushort)(sign | 0x7FFF)); // QNaN
            case 3: return ((1UL << 63) | (r.Next() >> 3) | 1, (ushort)(sign | 0x7FFF)); // SNaN
            case 4: return (r.Next() >> 1, sign); // denormal
            case 5: return ((r.Next() | (1UL << 63)) & (r.Chance(0.5) ? 0xFFFF_FF00_0000_0000UL : ulong.MaxValue), (ushort)(sign | (0x3FFF + r.Below(64) - 32))); // modest
            case 6:
            {
                // Exactly a double or single (ties and exact results).
                ulong d = FloatValues.Double(r);
                int e = (int)((d >> 52) & 0x7FF);
                if (e == 0 || e == 0x7FF)
                {
                    return ((1UL << 63) | (d << 11), (ushort)(sign | 0x3FFF));
                }

                return ((1UL << 63) | (d << 11), (ushort)(sign | (e - 1023 + 16383)));
            }

            case 7: return ((long)r.Below(1000) is long v && v > 0 ? (ulong)v << System.Numerics.BitOperations.LeadingZeroCount((ulong)v) : 1UL << 63, (ushort)(sign | (0x3FFF + 9 - (int)(r.Next() % 3))));
            case 8: return (r.Next() | (1UL << 63), (ushort)(sign | (r.Chance(0.5) ? 0x7FFE - r.Below(3) : 1 + r.Below(3)))); // near overflow/underflow
            case 9: return (r.Next() & ~(1UL << 63), (ushort)(sign | (1 + r.Below(0x7FFE)))); // unnormal (invalid operand)
            default: return (r.Next() | (1UL << 63), (ushort)(sign | (0x3FFF + r.Below(200) - 100)));
        }
    }
}
