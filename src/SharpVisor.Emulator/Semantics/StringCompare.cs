using System.Numerics;
using System.Runtime.Intrinsics;

namespace SharpVisor.Emulator;

/// <summary>
/// The SSE4.2 packed string compares (PCMPESTRI/M, PCMPISTRI/M): element format, aggregation,
/// polarity and output selection from imm8, with explicit (rAX/rDX) or implicit (NUL) lengths.
/// </summary>
internal static class StringCompare
{
    /// <summary>Computes IntRes2 and the flags; <paramref name="lengthA"/>/<paramref name="lengthB"/> are the valid element counts.</summary>
    public static uint Compare(Vector128<byte> a, Vector128<byte> b, int imm, int lengthA, int lengthB, out ulong flags)
    {
        bool words = (imm & 1) != 0;
        bool signed = (imm & 2) != 0;
        int n = words ? 8 : 16;
        int aggregation = (imm >> 2) & 3;
        int polarity = (imm >> 4) & 3;

        long Element(Vector128<byte> v, int i) => (words, signed) switch
        {
            (false, false) => v.GetElement(i),
            (false, true) => (sbyte)v.GetElement(i),
            (true, false) => v.AsUInt16().GetElement(i),
            _ => v.AsInt16().GetElement(i),
        };

        uint intRes1 = 0;
        for (int j = 0; j < n; j++)
        {
            bool bValid = j < lengthB;
            bool result;
            switch (aggregation)
            {
                case 0: // equal any
                    result = false;
                    if (bValid)
                    {
                        for (int i = 0; i < lengthA && !result; i++)
                        {
                            result = Element(a, i) == Element(b, j);
                        }
                    }

                    break;
                case 1: // ranges
                    result = false;
                    if (bValid)
                    {
                        for (int i = 0; i + 1 < n && !result; i += 2)
                        {
                            if (i < lengthA && i + 1 < lengthA)
                            {
                                result = Element(a, i) <= Element(b, j) && Element(b, j) <= Element(a, i + 1);
                            }
                            else if (i < lengthA)
                            {
                                // Only the lower bound is valid: the pair never matches.
                                result = false;
                            }
                        }
                    }

                    break;
                case 2: // equal each
                {
                    bool aValid = j < lengthA;
                    result = aValid && bValid ? Element(a, j) == Element(b, j) : !aValid && !bValid;
                    break;
                }

                default: // equal ordered
                    result = true;
                    for (int k = 0; k < n - j && result; k++)
                    {
                        bool aValid = k < lengthA;
                        bool bkValid = j + k < lengthB;
                        result = !aValid || (bkValid && Element(a, k) == Element(b, j + k));
                    }

                    break;
            }

            if (result)
            {
                intRes1 |= 1u << j;
            }
        }

        uint all = (1u << n) - 1;
        uint validB = lengthB >= n ? all : (1u << lengthB) - 1;
        uint intRes2 = polarity switch
        {
            1 => ~intRes1 & all,
            3 => (intRes1 ^ validB) & all,
            _ => intRes1,
        };

        flags = (intRes2 != 0 ? RflagsBits.Carry : 0)
            | (lengthB < n ? RflagsBits.Zero : 0)
            | (lengthA < n ? RflagsBits.Sign : 0)
            | ((intRes2 & 1) != 0 ? RflagsBits.Overflow : 0);
        return intRes2;
    }

    public static int ImplicitLength(Vector128<byte> v, bool words)
    {
        int n = words ? 8 : 16;
        for (int i = 0; i < n; i++)
        {
            if ((words ? v.AsUInt16().GetElement(i) : v.GetElement(i)) == 0)
            {
                return i;
            }
        }

        return n;
    }

    public static int ExplicitLength(long value, bool words)
    {
        int n = words ? 8 : 16;
        if (value < 0)
        {
            value = value == long.MinValue ? long.MaxValue : -value;
        }

        return (int)Math.Min(value, n);
    }

    public static int Index(uint intRes2, int imm)
    {
        int n = (imm & 1) != 0 ? 8 : 16;
        if (intRes2 == 0)
        {
            return n;
        }

        return (imm & 0x40) != 0 ? 31 - BitOperations.LeadingZeroCount(intRes2) : BitOperations.TrailingZeroCount(intRes2);
    }

    public static Vector128<byte> Mask(uint intRes2, int imm)
    {
        bool words = (imm & 1) != 0;
        if ((imm & 0x40) == 0)
        {
            return Vector128.CreateScalar(intRes2).AsByte();
        }

        if (words)
        {
            Vector128<ushort> r = default;
            for (int i = 0; i < 8; i++)
            {
                r = r.WithElement(i, (intRes2 & (1u << i)) != 0 ? (ushort)0xFFFF : (ushort)0);
            }

            return r.AsByte();
        }

        Vector128<byte> m = default;
        for (int i = 0; i < 16; i++)
        {
            m = m.WithElement(i, (intRes2 & (1u << i)) != 0 ? (byte)0xFF : (byte)0);
        }

        return m;
    }
}
