using System.Numerics;

namespace SharpVisor.Emulator;

/// <summary>
/// Exact IEEE 754 arithmetic for the x86 formats (single, double, x87 extended with precision
/// control): unpacking, correct rounding in every mode with x86 tininess-after-rounding,
/// flush-to-zero, and the exception flags. Results are packed as UInt128: single/double in the
/// low bits; extended as significand (low 64) and sign/exponent (bits 64-79).
/// NaN operands are the caller's business (propagation rules differ between SSE and x87).
/// </summary>
internal static class SoftFloat
{
    // ---- Unpacking ---------------------------------------------------------------------

    public static FloatValue Unpack32(uint bits, bool denormalsAreZero)
    {
        bool sign = (bits >> 31) != 0;
        int e = (int)((bits >> 23) & 0xFF);
        uint fraction = bits & 0x7F_FFFF;
        if (e == 0xFF)
        {
            if (fraction == 0)
            {
                return FloatValue.Infinity(sign);
            }

            return new FloatValue
            {
                Class = (fraction & 0x40_0000) != 0 ? FloatClass.QuietNaN : FloatClass.SignalingNaN,
                Sign = sign,
                Significand = (1UL << 63) | ((ulong)fraction << 40),
            };
        }

        if (e == 0)
        {
            if (fraction == 0)
            {
                return FloatValue.Zero(sign);
            }

            if (denormalsAreZero)
            {
                return FloatValue.Zero(sign) with { Denormal = true };
            }

            int msb = 31 - BitOperations.LeadingZeroCount(fraction);
            return new FloatValue
            {
                Class = FloatClass.Finite,
                Sign = sign,
                Denormal = true,
                Exponent = -126 - (23 - msb),
                Significand = (ulong)fraction << (63 - msb),
            };
        }

        return new FloatValue
        {
            Class = FloatClass.Finite,
            Sign = sign,
            Exponent = e - 127,
            Significand = (1UL << 63) | ((ulong)fraction << 40),
        };
    }

    public static FloatValue Unpack64(ulong bits, bool denormalsAreZero)
    {
        bool sign = (bits >> 63) != 0;
        int e = (int)((bits >> 52) & 0x7FF);
        ulong fraction = bits & 0xF_FFFF_FFFF_FFFF;
        if (e == 0x7FF)
        {
            if (fraction == 0)
            {
                return FloatValue.Infinity(sign);
            }

            return new FloatValue
            {
                Class = (fraction & (1UL << 51)) != 0 ? FloatClass.QuietNaN : FloatClass.SignalingNaN,
                Sign = sign,
                Significand = (1UL << 63) | (fraction << 11),
            };
        }

        if (e == 0)
        {
            if (fraction == 0)
            {
                return FloatValue.Zero(sign);
            }

            if (denormalsAreZero)
            {
                return FloatValue.Zero(sign) with { Denormal = true };
            }

            int msb = 63 - BitOperations.LeadingZeroCount(fraction);
            return new FloatValue
            {
                Class = FloatClass.Finite,
                Sign = sign,
                Denormal = true,
                Exponent = -1022 - (52 - msb),
                Significand = fraction << (63 - msb),
            };
        }

        return new FloatValue
        {
            Class = FloatClass.Finite,
            Sign = sign,
            Exponent = e - 1023,
            Significand = (1UL << 63) | (fraction << 11),
        };
    }

    public static FloatValue Unpack80(Float80 v)
    {
        bool sign = v.Sign;
        int e = v.Exponent;
        ulong s = v.Significand;
        if (e == 0x7FFF)
        {
            if ((s & (1UL << 63)) == 0)
            {
                return new FloatValue { Class = FloatClass.Unsupported, Sign = sign, Significand = s };
            }

            if ((s << 1) == 0)
            {
                return FloatValue.Infinity(sign);
            }

            return new FloatValue
            {
                Class = (s & (1UL << 62)) != 0 ? FloatClass.QuietNaN : FloatClass.SignalingNaN,
                Sign = sign,
                Significand = s,
            };
        }

        if (e == 0)
        {
            if (s == 0)
            {
                return FloatValue.Zero(sign);
            }

            // Denormals and pseudo-denormals (integer bit set) both have the exponent of 1.
            int msb = 63 - BitOperations.LeadingZeroCount(s);
            return new FloatValue
            {
                Class = FloatClass.Finite,
                Sign = sign,
                Denormal = true,
                Exponent = -16382 - (63 - msb),
                Significand = s << (63 - msb),
            };
        }

        if ((s & (1UL << 63)) == 0)
        {
            return new FloatValue { Class = FloatClass.Unsupported, Sign = sign, Significand = s };
        }

        return new FloatValue { Class = FloatClass.Finite, Sign = sign, Exponent = e - 16383, Significand = s };
    }

    // ---- Packing ------------------------------------------------------------------------

    public static UInt128 PackZero(FloatFormat f, bool sign) => Pack(f, sign, 0, 0);

    public static UInt128 PackInfinity(FloatFormat f, bool sign) =>
        f.ExplicitInteger ? Pack(f, sign, f.MaxBiasedExponent, 1UL << 63) : Pack(f, sign, f.MaxBiasedExponent, 0);

    /// <summary>The "indefinite" QNaN an invalid operation returns: negative, quiet bit only.</summary>
    public static UInt128 DefaultNaN(FloatFormat f) =>
        f.ExplicitInteger ? Pack(f, true, f.MaxBiasedExponent, 0xC000_0000_0000_0000) : Pack(f, true, f.MaxBiasedExponent, 1UL << (f.Precision - 2));

    /// <summary>A NaN operand converted to format <paramref name="f"/>, quieted, payload truncated from the top.</summary>
    public static UInt128 PackNaN(FloatFormat f, in FloatValue nan)
    {
        ulong s = nan.Significand | (1UL << 62);
        if (f.ExplicitInteger)
        {
            return Pack(f, nan.Sign, f.MaxBiasedExponent, s | (1UL << 63));
        }

        ulong fraction = (s << 1) >> (64 - (f.Precision - 1));
        return Pack(f, nan.Sign, f.MaxBiasedExponent, fraction);
    }

    /// <summary>Packs a biased exponent and the stored significand bits (without hidden bit for single/double).</summary>
    private static UInt128 Pack(FloatFormat f, bool sign, int biased, ulong stored)
    {
        if (f.ExplicitInteger)
        {
            return ((UInt128)((sign ? 0x8000u : 0u) | (uint)biased) << 64) | stored;
        }

        int fractionBits = f.Precision - 1;
        int exponentBits = f.MaxBiasedExponent == 255 ? 8 : 11;
        ulong bits = (stored & ((1UL << fractionBits) - 1)) | ((ulong)biased << fractionBits);
        if (sign)
        {
            bits |= 1UL << (fractionBits + exponentBits);
        }

        return bits;
    }

    private static UInt128 PackLargest(FloatFormat f, bool sign)
    {
        ulong all = f.Precision == 64 ? ulong.MaxValue : (1UL << f.Precision) - 1;
        ulong stored = f.ExplicitInteger ? all << (64 - f.Precision) : all;
        return Pack(f, sign, f.MaxBiasedExponent - 1, stored);
    }

    /// <summary>x87-style Float80 from a packed extended value.</summary>
    public static Float80 ToFloat80(UInt128 packed) => new((ulong)packed, (ushort)(packed >> 64));

    public static UInt128 FromFloat80(Float80 v) => ((UInt128)v.SignExponent << 64) | v.Significand;

    // ---- Rounding -----------------------------------------------------------------------

    /// <summary>
    /// Rounds sign × sig × 2^(exp − 127) to format <paramref name="f"/> in the environment's mode,
    /// raising overflow, underflow (after rounding) and inexact; flushes tiny results when FTZ.
    /// </summary>
    public static UInt128 RoundPack(FloatFormat f, bool sign, int exp, UInt128 sig, ref FloatEnvironment env)
    {
        if (sig == UInt128.Zero)
        {
            return PackZero(f, sign);
        }

        int lz = (int)UInt128.LeadingZeroCount(sig);
        sig <<= lz;
        exp -= lz;
        int p = f.Precision;
        int shift = 128 - p;
        int biased = exp + f.Bias;
        bool tiny = false;
        UInt128 unbounded = sig;
        int unbiased = exp;
        if (biased <= 0)
        {
            // Tininess after rounding: tiny unless rounding with an unbounded exponent reaches the normal range.
            bool carries = RoundedValue(sig, shift, sign, env.Rounding, out _) >> (p - 1) > 1;
            tiny = !(biased == 0 && carries);
            int extra = 1 - biased;
            sig = ShiftRightJam(sig, extra);
            biased = 0;
        }

        UInt128 kept = RoundedValue(sig, shift, sign, env.Rounding, out bool inexact);
        env.RoundedUp = kept != sig >> shift;
        if (biased == 0)
        {
            if (kept >> (p - 1) != 0)
            {
                biased = 1;
            }

            if (tiny)
            {
                if (env.FlushToZero && env.UnderflowMasked)
                {
                    env.Flags |= FloatFlags.Underflow | FloatFlags.Inexact;
                    return PackZero(f, sign);
                }

                if (!env.UnderflowMasked)
                {
                    // Unmasked: underflow on tininess alone; inexact as for the unbounded-exponent result,
                    // which x87 delivers with its exponent biased up by 24576 (SSE delivers nothing).
                    UInt128 wide = RoundedValue(unbounded, shift, sign, env.Rounding, out bool unboundedInexact);
                    env.RoundedUp = wide != unbounded >> shift;
                    env.Flags |= FloatFlags.Underflow | (unboundedInexact ? FloatFlags.Inexact : 0);
                    if (f.ExplicitInteger && unbiased + f.Bias + X87ExponentWrap > 0)
                    {
                        return PackWrapped(f, sign, unbiased + f.Bias + X87ExponentWrap, wide, p);
                    }

                    // SSE, or too tiny even for the x87 wrap: the masked response.
                    if (f.ExplicitInteger)
                    {
                        env.Flags |= FloatFlags.Inexact;
                    }

                    return PackZero(f, sign);
                }

                if (inexact)
                {
                    env.Flags |= FloatFlags.Underflow;
                }
            }
        }
        else if (kept >> p != 0)
        {
            kept >>= 1;
            biased++;
        }

        if (biased >= f.MaxBiasedExponent)
        {
            if (!env.OverflowMasked)
            {
                env.Flags |= FloatFlags.Overflow | (inexact ? FloatFlags.Inexact : 0);
                if (f.ExplicitInteger && biased - X87ExponentWrap < f.MaxBiasedExponent)
                {
                    return PackWrapped(f, sign, biased - X87ExponentWrap, kept, p);
                }

                if (f.ExplicitInteger)
                {
                    // Too large even for the x87 wrap: infinity, rounded up in magnitude (C1 = 1).
                    env.Flags |= FloatFlags.Inexact;
                    env.RoundedUp = true;
                }

                return PackInfinity(f, sign);
            }

            env.Flags |= FloatFlags.Overflow | FloatFlags.Inexact;
            bool toInfinity = env.Rounding switch
            {
                RoundingMode.Nearest => true,
                RoundingMode.TowardZero => false,
                RoundingMode.Down => sign,
                _ => !sign,
            };
            env.RoundedUp = toInfinity;
            return toInfinity ? PackInfinity(f, sign) : PackLargest(f, sign);
        }

        if (inexact)
        {
            env.Flags |= FloatFlags.Inexact;
        }

        ulong stored = (ulong)kept;
        if (f.ExplicitInteger)
        {
            stored <<= 64 - p;
        }

        return Pack(f, sign, biased, stored);
    }

    /// <summary>The exponent adjustment x87 applies to results of unmasked overflow/underflow.</summary>
    public const int X87ExponentWrap = 24576;

    /// <summary>An extended result with its exponent wrapped into range (unmasked x87 overflow/underflow).</summary>
    private static UInt128 PackWrapped(FloatFormat f, bool sign, int biased, UInt128 kept, int p)
    {
        if (kept >> p != 0)
        {
            kept >>= 1;
            biased++;
        }

        return Pack(f, sign, biased & 0x7FFF, (ulong)kept << (64 - p));
    }

    /// <summary>sig rounded to its top (128 − shift) bits as an integer (may carry one bit beyond).</summary>
    private static UInt128 RoundedValue(UInt128 sig, int shift, bool sign, int mode, out bool inexact)
    {
        UInt128 mask = (UInt128.One << shift) - 1;
        UInt128 roundBits = sig & mask;
        UInt128 kept = sig >> shift;
        inexact = roundBits != UInt128.Zero;
        bool increment = mode switch
        {
            RoundingMode.Nearest => roundBits > (UInt128.One << (shift - 1)) || (roundBits == (UInt128.One << (shift - 1)) && (kept & 1) != 0),
            RoundingMode.Down => sign && inexact,
            RoundingMode.Up => !sign && inexact,
            _ => false,
        };
        return increment ? kept + 1 : kept;
    }

    /// <summary>Shifts right keeping a sticky bit for everything shifted out.</summary>
    public static UInt128 ShiftRightJam(UInt128 value, int count)
    {
        if (count <= 0)
        {
            return value;
        }

        if (count >= 128)
        {
            return value != UInt128.Zero ? UInt128.One : UInt128.Zero;
        }

        UInt128 lost = value & ((UInt128.One << count) - 1);
        return (value >> count) | (lost != UInt128.Zero ? UInt128.One : UInt128.Zero);
    }

    /// <summary>A finite (or zero) operand rounded into format <paramref name="f"/> (conversions, x87 loads with precision control).</summary>
    public static UInt128 Round(FloatFormat f, in FloatValue v, ref FloatEnvironment env)
    {
        return v.Class switch
        {
            FloatClass.Zero => PackZero(f, v.Sign),
            FloatClass.Infinity => PackInfinity(f, v.Sign),
            _ => RoundPack(f, v.Sign, v.Exponent, (UInt128)v.Significand << 64, ref env),
        };
    }

    // ---- Arithmetic (non-NaN operands) ----------------------------------------------------

    public static UInt128 Add(FloatFormat f, in FloatValue a, in FloatValue b, bool subtract, ref FloatEnvironment env)
    {
        bool signB = b.Sign ^ subtract;
        if (a.Class == FloatClass.Infinity || b.Class == FloatClass.Infinity)
        {
            if (a.Class == FloatClass.Infinity && b.Class == FloatClass.Infinity && a.Sign != signB)
            {
                env.Flags |= FloatFlags.Invalid;
                return DefaultNaN(f);
            }

            return PackInfinity(f, a.Class == FloatClass.Infinity ? a.Sign : signB);
        }

        if (a.Class == FloatClass.Zero && b.Class == FloatClass.Zero)
        {
            return PackZero(f, a.Sign == signB ? a.Sign : env.Rounding == RoundingMode.Down);
        }

        if (a.Class == FloatClass.Zero)
        {
            return RoundPack(f, signB, b.Exponent, (UInt128)b.Significand << 64, ref env);
        }

        if (b.Class == FloatClass.Zero)
        {
            return RoundPack(f, a.Sign, a.Exponent, (UInt128)a.Significand << 64, ref env);
        }

        // Align to the larger exponent; the smaller operand keeps a sticky bit.
        bool signA = a.Sign;
        int expA = a.Exponent;
        int expB = b.Exponent;
        UInt128 sigA = (UInt128)a.Significand << 63;
        UInt128 sigB = (UInt128)b.Significand << 63;
        if (expA < expB || (expA == expB && sigA < sigB))
        {
            (signA, signB) = (signB, signA);
            (expA, expB) = (expB, expA);
            (sigA, sigB) = (sigB, sigA);
        }

        sigB = ShiftRightJam(sigB, expA - expB);
        UInt128 sum;
        bool sign = signA;
        if (signA == signB)
        {
            sum = sigA + sigB;
        }
        else
        {
            sum = sigA - sigB;
            if (sum == UInt128.Zero)
            {
                return PackZero(f, env.Rounding == RoundingMode.Down);
            }
        }

        // value = sum × 2^(expA − 126): the leading bit of a significand sits at bit 126.
        return RoundPack(f, sign, expA + 1, sum, ref env);
    }

    public static UInt128 Multiply(FloatFormat f, in FloatValue a, in FloatValue b, ref FloatEnvironment env)
    {
        bool sign = a.Sign ^ b.Sign;
        if (a.Class == FloatClass.Infinity || b.Class == FloatClass.Infinity)
        {
            if (a.Class == FloatClass.Zero || b.Class == FloatClass.Zero)
            {
                env.Flags |= FloatFlags.Invalid;
                return DefaultNaN(f);
            }

            return PackInfinity(f, sign);
        }

        if (a.Class == FloatClass.Zero || b.Class == FloatClass.Zero)
        {
            return PackZero(f, sign);
        }

        UInt128 product = (UInt128)a.Significand * b.Significand;
        return RoundPack(f, sign, a.Exponent + b.Exponent + 1, product, ref env);
    }

    public static UInt128 Divide(FloatFormat f, in FloatValue a, in FloatValue b, ref FloatEnvironment env)
    {
        bool sign = a.Sign ^ b.Sign;
        if (a.Class == FloatClass.Infinity)
        {
            if (b.Class == FloatClass.Infinity)
            {
                env.Flags |= FloatFlags.Invalid;
                return DefaultNaN(f);
            }

            return PackInfinity(f, sign);
        }

        if (b.Class == FloatClass.Infinity)
        {
            return PackZero(f, sign);
        }

        if (b.Class == FloatClass.Zero)
        {
            if (a.Class == FloatClass.Zero)
            {
                env.Flags |= FloatFlags.Invalid;
                return DefaultNaN(f);
            }

            env.Flags |= FloatFlags.DivideByZero;
            return PackInfinity(f, sign);
        }

        if (a.Class == FloatClass.Zero)
        {
            return PackZero(f, sign);
        }

        int s = a.Significand >= b.Significand ? 63 : 64;
        UInt128 numerator = (UInt128)a.Significand << s;
        UInt128 q1 = numerator / b.Significand;
        ulong r1 = (ulong)(numerator - (q1 * b.Significand));
        UInt128 numerator2 = (UInt128)r1 << 64;
        UInt128 q2 = numerator2 / b.Significand;
        ulong r2 = (ulong)(numerator2 - (q2 * b.Significand));
        UInt128 q = (q1 << 64) | (ulong)q2 | (r2 != 0 ? 1UL : 0);
        return RoundPack(f, sign, a.Exponent - b.Exponent + 63 - s, q, ref env);
    }

    public static UInt128 Sqrt(FloatFormat f, in FloatValue a, ref FloatEnvironment env)
    {
        if (a.Class == FloatClass.Zero)
        {
            return PackZero(f, a.Sign);
        }

        if (a.Sign)
        {
            env.Flags |= FloatFlags.Invalid;
            return DefaultNaN(f);
        }

        if (a.Class == FloatClass.Infinity)
        {
            return PackInfinity(f, false);
        }

        // value = S × 2^(e−63); radicand N = S × 2^s with (e − 63 − s) even.
        int s = ((a.Exponent - 63 - 64) & 1) == 0 ? 64 : 63;
        UInt128 n = (UInt128)a.Significand << s;
        ulong root = IntegerSqrt(n);
        UInt128 remainder = n - ((UInt128)root * root);
        ulong fraction = remainder > root ? 0x8000_0000_0000_0001UL : remainder != UInt128.Zero ? 1UL : 0;
        int half = (a.Exponent - 63 - s) / 2;
        return RoundPack(f, false, half + 63, ((UInt128)root << 64) | fraction, ref env);
    }

    /// <summary>floor(sqrt(n)) for n below 2^128.</summary>
    public static ulong IntegerSqrt(UInt128 n)
    {
        double estimate = Math.Sqrt((double)n);
        ulong x = estimate >= 18446744073709551615.0 ? ulong.MaxValue : (ulong)estimate;
        for (int i = 0; i < 4 && x != 0; i++)
        {
            x = (ulong)((x + (n / x)) >> 1);
        }

        while ((UInt128)x * x > n)
        {
            x--;
        }

        while (x != ulong.MaxValue && (UInt128)(x + 1) * (x + 1) <= n)
        {
            x++;
        }

        return x;
    }

    // ---- Conversions and comparisons -------------------------------------------------------

    /// <summary>Converts a signed integer exactly or with rounding into <paramref name="f"/>.</summary>
    public static UInt128 FromInt64(FloatFormat f, long value, ref FloatEnvironment env)
    {
        if (value == 0)
        {
            return PackZero(f, false);
        }

        bool sign = value < 0;
        ulong magnitude = sign ? (ulong)(-(value + 1)) + 1 : (ulong)value;
        return RoundPack(f, sign, 127, magnitude, ref env);
    }

    /// <summary>
    /// Rounds a value to a signed integer of <paramref name="bits"/> bits (in mode <paramref name="mode"/>);
    /// NaN or out of range gives the integer indefinite (the most negative value) and #I.
    /// </summary>
    public static long ToInt(in FloatValue v, int bits, int mode, ref FloatEnvironment env)
    {
        long indefinite = bits == 64 ? long.MinValue : bits == 32 ? int.MinValue : short.MinValue;
        if (v.Class is FloatClass.QuietNaN or FloatClass.SignalingNaN or FloatClass.Infinity or FloatClass.Unsupported)
        {
            env.Flags |= FloatFlags.Invalid;
            return indefinite;
        }

        if (v.Class == FloatClass.Zero)
        {
            return 0;
        }

        ulong integer;
        bool inexact;
        if (v.Exponent >= 64)
        {
            env.Flags |= FloatFlags.Invalid;
            return indefinite;
        }

        if (v.Exponent < -1)
        {
            integer = 0;
            inexact = true;
            bool up = mode switch
            {
                RoundingMode.Up => !v.Sign,
                RoundingMode.Down => v.Sign,
                _ => false,
            };
            integer = up ? 1UL : 0;
        }
        else
        {
            // Fixed point with 64 fraction bits.
            UInt128 fixedPoint = ((UInt128)v.Significand << 64) >> (63 - v.Exponent);
            integer = (ulong)(fixedPoint >> 64);
            ulong fraction = (ulong)fixedPoint;
            inexact = fraction != 0;
            bool increment = mode switch
            {
                RoundingMode.Nearest => fraction > 0x8000_0000_0000_0000UL || (fraction == 0x8000_0000_0000_0000UL && (integer & 1) != 0),
                RoundingMode.Up => !v.Sign && inexact,
                RoundingMode.Down => v.Sign && inexact,
                _ => false,
            };
            if (increment)
            {
                integer++;
                if (integer == 0)
                {
                    env.Flags |= FloatFlags.Invalid;
                    return indefinite;
                }
            }
        }

        ulong limit = bits == 64 ? 1UL << 63 : 1UL << (bits - 1);
        if (v.Sign ? integer > limit : integer >= limit)
        {
            env.Flags |= FloatFlags.Invalid;
            return indefinite;
        }

        if (inexact)
        {
            env.Flags |= FloatFlags.Inexact;
        }

        return v.Sign ? -(long)integer : (long)integer;
    }

    /// <summary>Rounds a value to an integral value in format <paramref name="f"/> (ROUNDSS/ROUNDSD, FRNDINT).</summary>
    public static UInt128 RoundToIntegral(FloatFormat f, in FloatValue v, int mode, bool suppressInexact, ref FloatEnvironment env)
    {
        if (v.Class == FloatClass.Zero)
        {
            return PackZero(f, v.Sign);
        }

        if (v.Class != FloatClass.Finite || v.Exponent >= 63)
        {
            return Round(f, v, ref env);
        }

        ulong integer;
        ulong fraction;
        if (v.Exponent >= 0)
        {
            UInt128 fixedPoint = ((UInt128)v.Significand << 64) >> (63 - v.Exponent);
            integer = (ulong)(fixedPoint >> 64);
            fraction = (ulong)fixedPoint;
        }
        else if (v.Exponent == -1)
        {
            integer = 0;
            fraction = v.Significand;
        }
        else
        {
            integer = 0;
            fraction = 1;
        }

        bool inexact = fraction != 0;
        bool increment = mode switch
        {
            RoundingMode.Nearest => fraction > 0x8000_0000_0000_0000UL || (fraction == 0x8000_0000_0000_0000UL && (integer & 1) != 0),
            RoundingMode.Up => !v.Sign && inexact,
            RoundingMode.Down => v.Sign && inexact,
            _ => false,
        };
        if (increment)
        {
            integer++;
        }

        if (inexact && !suppressInexact)
        {
            env.Flags |= FloatFlags.Inexact;
        }

        if (integer == 0)
        {
            return PackZero(f, v.Sign);
        }

        var exact = new FloatEnvironment();
        return RoundPack(f, v.Sign, 127, integer, ref exact);
    }

    /// <summary>Orders two non-NaN values: −1, 0, 1 (zeros compare equal whatever their signs).</summary>
    public static int Compare(in FloatValue a, in FloatValue b)
    {
        if (a.Class == FloatClass.Zero && b.Class == FloatClass.Zero)
        {
            return 0;
        }

        int magnitude = CompareMagnitude(a, b);
        if (a.Sign != b.Sign)
        {
            return a.Sign ? -1 : 1;
        }

        return a.Sign ? -magnitude : magnitude;
    }

    private static int CompareMagnitude(in FloatValue a, in FloatValue b)
    {
        int rankA = a.Class == FloatClass.Zero ? 0 : a.Class == FloatClass.Infinity ? 2 : 1;
        int rankB = b.Class == FloatClass.Zero ? 0 : b.Class == FloatClass.Infinity ? 2 : 1;
        if (rankA != rankB || rankA != 1)
        {
            return rankA.CompareTo(rankB);
        }

        if (a.Exponent != b.Exponent)
        {
            return a.Exponent.CompareTo(b.Exponent);
        }

        return a.Significand.CompareTo(b.Significand);
    }
}
