namespace SharpVisor.Emulator;

/// <summary>x87 operations on the stack top: FCHS, FABS, FSQRT, FRNDINT, FXAM, FSCALE, FXTRACT, FPREM(1), transcendentals.</summary>
internal static class X87UnaryHandlers
{
    /// <summary>Checks ST(0) (and ST(1) when <paramref name="two"/>) hold values; on underflow applies the masked response.</summary>
    private static bool Operands(X86Cpu cpu, ref Op op, bool two, int resultsOnFault = 1)
    {
        if (cpu.StEmpty(0) || (two && cpu.StEmpty(1)))
        {
            if (cpu.X87StackFault(overflow: false, ref op))
            {
                for (int i = 0; i < resultsOnFault; i++)
                {
                    cpu.St(i) = X87Arithmetic.Indefinite;
                    cpu.SetStValid(i, true);
                }
            }

            return false;
        }

        return true;
    }

    private static void Begin(X86Cpu cpu, ref Op op)
    {
        cpu.X87Begin();
        cpu.X87Record(ref op);
    }

    public static void Fchs(X86Cpu cpu, ref Op op)
    {
        Begin(cpu, ref op);
        cpu._fsw &= unchecked((ushort)~X86Cpu.FswC1);
        if (Operands(cpu, ref op, false))
        {
            ref Float80 v = ref cpu.St(0);
            v.SignExponent ^= 0x8000;
        }
    }

    public static void Fabs(X86Cpu cpu, ref Op op)
    {
        Begin(cpu, ref op);
        cpu._fsw &= unchecked((ushort)~X86Cpu.FswC1);
        if (Operands(cpu, ref op, false))
        {
            ref Float80 v = ref cpu.St(0);
            v.SignExponent &= 0x7FFF;
        }
    }

    public static void Fsqrt(X86Cpu cpu, ref Op op)
    {
        Begin(cpu, ref op);
        if (!Operands(cpu, ref op, false))
        {
            return;
        }

        FloatEnvironment env = FloatEnvironment.FromFcw(cpu._fcw);
        Float80 r = X87Arithmetic.Sqrt(cpu.St(0), cpu._fcw, ref env);
        if (cpu.X87Commit(ref env, ref op))
        {
            cpu.St(0) = r;
        }
    }

    public static void Frndint(X86Cpu cpu, ref Op op)
    {
        Begin(cpu, ref op);
        if (!Operands(cpu, ref op, false))
        {
            return;
        }

        FloatEnvironment env = FloatEnvironment.FromFcw(cpu._fcw);
        FloatValue v = SoftFloat.Unpack80(cpu.St(0));
        Float80 r;
        if (v.Class == FloatClass.Unsupported)
        {
            env.Flags |= FloatFlags.Invalid;
            r = X87Arithmetic.Indefinite;
        }
        else if (v.IsNaN)
        {
            env.Flags |= v.Class == FloatClass.SignalingNaN ? FloatFlags.Invalid : 0;
            r = X87Arithmetic.Quiet(v);
        }
        else
        {
            env.Flags |= v.Denormal ? FloatFlags.Denormal : 0;
            r = SoftFloat.ToFloat80(SoftFloat.RoundToIntegral(FloatFormat.Extended, v, env.Rounding, false, ref env));
            env.RoundedUp = Magnitude(r) > Magnitude(cpu.St(0));
        }

        if (cpu.X87Commit(ref env, ref op))
        {
            cpu.St(0) = r;
        }
    }

    private static UInt128 Magnitude(Float80 v) => ((UInt128)(ushort)(v.SignExponent & 0x7FFF) << 64) | v.Significand;

    public static void Fxam(X86Cpu cpu, ref Op op)
    {
        Begin(cpu, ref op);
        Float80 v = cpu.St(0);
        ushort codes;
        if (cpu.StEmpty(0))
        {
            codes = X86Cpu.FswC3 | X86Cpu.FswC0;
        }
        else
        {
            FloatValue x = SoftFloat.Unpack80(v);
            codes = x.Class switch
            {
                FloatClass.Unsupported => 0,
                FloatClass.QuietNaN or FloatClass.SignalingNaN => X86Cpu.FswC0,
                FloatClass.Infinity => X86Cpu.FswC2 | X86Cpu.FswC0,
                FloatClass.Zero => X86Cpu.FswC3,
                _ => x.Denormal ? (ushort)(X86Cpu.FswC3 | X86Cpu.FswC2) : X86Cpu.FswC2,
            };
        }

        if (v.Sign)
        {
            codes |= X86Cpu.FswC1;
        }

        cpu._fsw = (ushort)((cpu._fsw & ~X86Cpu.FswConditionCodes) | codes);
    }

    public static void Fscale(X86Cpu cpu, ref Op op)
    {
        Begin(cpu, ref op);
        if (!Operands(cpu, ref op, true))
        {
            return;
        }

        FloatEnvironment env = FloatEnvironment.FromFcw(cpu._fcw);
        FloatValue x = SoftFloat.Unpack80(cpu.St(0));
        FloatValue y = SoftFloat.Unpack80(cpu.St(1));
        Float80 r;
        if (x.Class == FloatClass.Unsupported || y.Class == FloatClass.Unsupported)
        {
            env.Flags |= FloatFlags.Invalid;
            r = X87Arithmetic.Indefinite;
        }
        else if (x.IsNaN || y.IsNaN)
        {
            env.Flags |= x.Class == FloatClass.SignalingNaN || y.Class == FloatClass.SignalingNaN ? FloatFlags.Invalid : 0;
            r = X87Arithmetic.PickNaN(x, y);
        }
        else if (y.Class == FloatClass.Infinity)
        {
            bool invalid = y.Sign ? x.Class == FloatClass.Infinity : x.Class == FloatClass.Zero;
            if (invalid)
            {
                env.Flags |= FloatFlags.Invalid;
                r = X87Arithmetic.Indefinite;
            }
            else
            {
                env.Flags |= x.Denormal ? FloatFlags.Denormal : 0;
                r = x.Class is FloatClass.Zero or FloatClass.Infinity ? cpu.St(0)
                    : y.Sign ? SoftFloat.ToFloat80(SoftFloat.PackZero(FloatFormat.Extended, x.Sign))
                    : SoftFloat.ToFloat80(SoftFloat.PackInfinity(FloatFormat.Extended, x.Sign));
            }
        }
        else if (x.Class is FloatClass.Zero or FloatClass.Infinity)
        {
            env.Flags |= y.Denormal ? FloatFlags.Denormal : 0;
            r = cpu.St(0);
        }
        else
        {
            env.Flags |= x.Denormal || y.Denormal ? FloatFlags.Denormal : 0;
            long scale = 0;
            if (y.Class == FloatClass.Finite && y.Exponent >= 0)
            {
                scale = y.Exponent >= 30 ? 1 << 30 : (long)(y.Significand >> (63 - y.Exponent));
                scale = y.Sign ? -scale : scale;
            }

            r = SoftFloat.ToFloat80(SoftFloat.RoundPack(FloatFormat.Extended, x.Sign, (int)(x.Exponent + scale), (UInt128)x.Significand << 64, ref env));
        }

        if (cpu.X87Commit(ref env, ref op))
        {
            cpu.St(0) = r;
        }
    }

    public static void Fxtract(X86Cpu cpu, ref Op op)
    {
        Begin(cpu, ref op);
        if (cpu.StEmpty(0) || !cpu.StEmpty(7))
        {
            // Underflow (empty ST(0)) takes precedence over overflow (full ST(7)).
            if (cpu.X87StackFault(overflow: !cpu.StEmpty(0), ref op))
            {
                cpu.St(0) = X87Arithmetic.Indefinite;
                cpu.SetStValid(0, true);
                cpu.FpuPush(X87Arithmetic.Indefinite);
            }

            return;
        }

        FloatEnvironment env = FloatEnvironment.FromFcw(cpu._fcw);
        FloatValue x = SoftFloat.Unpack80(cpu.St(0));
        Float80 exponent;
        Float80 significand;
        if (x.Class == FloatClass.Unsupported || x.IsNaN)
        {
            env.Flags |= x.Class != FloatClass.QuietNaN ? FloatFlags.Invalid : 0;
            exponent = significand = x.IsNaN ? X87Arithmetic.Quiet(x) : X87Arithmetic.Indefinite;
        }
        else if (x.Class == FloatClass.Zero)
        {
            env.Flags |= FloatFlags.DivideByZero;
            exponent = SoftFloat.ToFloat80(SoftFloat.PackInfinity(FloatFormat.Extended, true));
            significand = cpu.St(0);
        }
        else if (x.Class == FloatClass.Infinity)
        {
            exponent = SoftFloat.ToFloat80(SoftFloat.PackInfinity(FloatFormat.Extended, false));
            significand = cpu.St(0);
        }
        else
        {
            env.Flags |= x.Denormal ? FloatFlags.Denormal : 0;
            var exact = new FloatEnvironment();
            exponent = SoftFloat.ToFloat80(SoftFloat.FromInt64(FloatFormat.Extended, x.Exponent, ref exact));
            significand = new Float80(x.Significand, (ushort)(0x3FFF | (x.Sign ? 0x8000 : 0)));
        }

        if (cpu.X87Commit(ref env, ref op))
        {
            cpu.St(0) = exponent;
            cpu.FpuPush(significand);
        }
    }

    /// <summary>FPREM (Aux 0: truncating quotient) and FPREM1 (Aux 1: IEEE remainder).</summary>
    public static void Fprem(X86Cpu cpu, ref Op op)
    {
        Begin(cpu, ref op);
        if (!Operands(cpu, ref op, true))
        {
            cpu._fsw &= unchecked((ushort)~X86Cpu.FswC2);
            return;
        }

        FloatEnvironment env = FloatEnvironment.FromFcw(cpu._fcw);
        FloatValue x = SoftFloat.Unpack80(cpu.St(0));
        FloatValue y = SoftFloat.Unpack80(cpu.St(1));
        ushort codes = 0;
        bool reduced = false;
        Float80 r;
        if (x.Class == FloatClass.Unsupported || y.Class == FloatClass.Unsupported)
        {
            env.Flags |= FloatFlags.Invalid;
            r = X87Arithmetic.Indefinite;
        }
        else if (x.IsNaN || y.IsNaN)
        {
            env.Flags |= x.Class == FloatClass.SignalingNaN || y.Class == FloatClass.SignalingNaN ? FloatFlags.Invalid : 0;
            r = X87Arithmetic.PickNaN(x, y);
        }
        else if (x.Class == FloatClass.Infinity || y.Class == FloatClass.Zero)
        {
            env.Flags |= FloatFlags.Invalid;
            r = X87Arithmetic.Indefinite;
        }
        else if (x.Class == FloatClass.Zero || y.Class == FloatClass.Infinity)
        {
            // The remainder is ST(0) itself with a zero quotient.
            env.Flags |= x.Denormal || y.Denormal ? FloatFlags.Denormal : 0;
            reduced = true;
            r = cpu.St(0);
        }
        else
        {
            env.Flags |= x.Denormal || y.Denormal ? FloatFlags.Denormal : 0;
            reduced = true;
            int difference = x.Exponent - y.Exponent;
            if (difference < 64)
            {
                r = Remainder(x, y, op.Aux == 1, out ulong quotient);
                codes = (ushort)(((quotient & 4) != 0 ? X86Cpu.FswC0 : 0) | ((quotient & 2) != 0 ? X86Cpu.FswC3 : 0) | ((quotient & 1) != 0 ? X86Cpu.FswC1 : 0));
            }
            else
            {
                // Partial remainder: reduce the exponent difference by an amount in 32..63 and report C2.
                int n = 32 + ((difference - 32) % 32);
                FloatValue scaledY = y;
                scaledY.Exponent = x.Exponent - n;
                r = Remainder(x, scaledY, false, out _);
                codes = X86Cpu.FswC2;
            }
        }

        if (cpu.X87Commit(ref env, ref op))
        {
            cpu.St(0) = r;

            // Without a reduction (special operands) only C2 and C1 are cleared.
            ushort affected = reduced ? X86Cpu.FswConditionCodes : (ushort)(X86Cpu.FswC2 | X86Cpu.FswC1);
            cpu._fsw = (ushort)((cpu._fsw & ~affected) | codes);
        }
        else
        {
            // An unmasked exception stops the instruction with C2 (and C1, by X87Commit) clear, as on hardware.
            cpu._fsw &= unchecked((ushort)~X86Cpu.FswC2);
        }
    }

    /// <summary>Exact remainder x − q·y with q truncated (or rounded to nearest even when <paramref name="nearest"/>); exponent difference below 64.</summary>
    private static Float80 Remainder(in FloatValue x, in FloatValue y, bool nearest, out ulong quotient)
    {
        int difference = x.Exponent - y.Exponent;
        if (difference < 0)
        {
            quotient = 0;
            if (nearest && difference == -1 && x.Significand > y.Significand)
            {
                // |x| > |y|/2: the nearest quotient is 1 and the remainder is |y| − |x| with the opposite sign.
                quotient = 1;
                UInt128 magnitude = ((UInt128)y.Significand << 1) - x.Significand;
                var exact = new FloatEnvironment();
                return SoftFloat.ToFloat80(SoftFloat.RoundPack(FloatFormat.Extended, !x.Sign, x.Exponent + 64, magnitude, ref exact));
            }

            return SoftFloat.ToFloat80(RoundExact(x.Sign, x.Exponent, x.Significand));
        }

        UInt128 dividend = (UInt128)x.Significand << difference;
        UInt128 q = dividend / y.Significand;
        UInt128 rem = dividend - (q * y.Significand);
        bool sign = x.Sign;
        if (nearest)
        {
            UInt128 twice = rem << 1;
            if (twice > y.Significand || (twice == y.Significand && (q & 1) != 0))
            {
                q++;
                rem = y.Significand - rem;
                sign = !sign;
            }
        }

        quotient = (ulong)q;
        if (rem == UInt128.Zero)
        {
            return SoftFloat.ToFloat80(SoftFloat.PackZero(FloatFormat.Extended, x.Sign));
        }

        // rem × 2^(y.Exponent − 63) exactly.
        var env = new FloatEnvironment();
        return SoftFloat.ToFloat80(SoftFloat.RoundPack(FloatFormat.Extended, sign, y.Exponent + 64, rem, ref env));
    }

    private static UInt128 RoundExact(bool sign, int exponent, ulong significand)
    {
        var env = new FloatEnvironment();
        return SoftFloat.RoundPack(FloatFormat.Extended, sign, exponent, (UInt128)significand << 64, ref env);
    }

    // ---- Transcendentals (computed in double precision, rounded to extended) -----------------------

    public const int F2xm1 = 0;
    public const int Fyl2x = 1;
    public const int Fyl2xp1 = 2;
    public const int Fptan = 3;
    public const int Fpatan = 4;
    public const int Fsin = 5;
    public const int Fcos = 6;
    public const int Fsincos = 7;

    public static void Transcendental(X86Cpu cpu, ref Op op)
    {
        Begin(cpu, ref op);
        int kind = op.Aux;
        bool two = kind is Fyl2x or Fyl2xp1 or Fpatan;
        bool pushes = kind is Fptan or Fsincos;
        if (pushes && (cpu.StEmpty(0) || !cpu.StEmpty(7)))
        {
            if (cpu.X87StackFault(overflow: !cpu.StEmpty(0), ref op))
            {
                cpu.St(0) = X87Arithmetic.Indefinite;
                cpu.SetStValid(0, true);
                cpu.FpuPush(X87Arithmetic.Indefinite);
            }

            return;
        }

        if (two && (cpu.StEmpty(0) || cpu.StEmpty(1)))
        {
            // Two-operand forms put the indefinite in ST(1) and pop.
            if (cpu.X87StackFault(overflow: false, ref op))
            {
                cpu.St(1) = X87Arithmetic.Indefinite;
                cpu.SetStValid(1, true);
                cpu.FpuPop();
            }

            return;
        }

        if (!Operands(cpu, ref op, two))
        {
            return;
        }

        FloatEnvironment env = FloatEnvironment.FromFcw(cpu._fcw);
        FloatValue x = SoftFloat.Unpack80(cpu.St(0));
        FloatValue y = two ? SoftFloat.Unpack80(cpu.St(1)) : x;
        if (x.IsNaN || y.IsNaN || x.Class == FloatClass.Unsupported || y.Class == FloatClass.Unsupported)
        {
            env.Flags |= x.Class is FloatClass.SignalingNaN or FloatClass.Unsupported || y.Class is FloatClass.SignalingNaN or FloatClass.Unsupported ? FloatFlags.Invalid : 0;
            Float80 nan = x.Class == FloatClass.Unsupported || y.Class == FloatClass.Unsupported ? X87Arithmetic.Indefinite : X87Arithmetic.PickNaN(x, y);
            if (cpu.X87Commit(ref env, ref op))
            {
                Finish(cpu, kind, nan, nan);
            }

            return;
        }

        double a = ToDouble(cpu.St(0));
        double b = two ? ToDouble(cpu.St(1)) : 0;
        if (kind is Fptan or Fsin or Fcos or Fsincos && Math.Abs(a) >= 9.2233720368547758E18)
        {
            // Out of range: C2 = 1, operand unchanged.
            cpu._fsw = (ushort)((cpu._fsw & ~X86Cpu.FswConditionCodes) | X86Cpu.FswC2);
            return;
        }

        env.Flags |= x.Denormal || y.Denormal ? FloatFlags.Denormal : 0;
        double r1;
        double r2 = 0;
        switch (kind)
        {
            case F2xm1: r1 = Math.Abs(a) <= 1 ? Math.Pow(2, a) - 1 : double.NaN; break;
            case Fyl2x:
                if (a < 0 || (a == 0 && b == 0) || (double.IsInfinity(a) && b == 0) || (a == 1 && double.IsInfinity(b)))
                {
                    env.Flags |= FloatFlags.Invalid;
                    r1 = double.NaN;
                }
                else
                {
                    if (a == 0)
                    {
                        env.Flags |= FloatFlags.DivideByZero;
                    }

                    r1 = b * Math.Log2(a);
                }

                break;
            case Fyl2xp1: r1 = b * Math.Log2(1 + a); break;
            case Fptan: r1 = Math.Tan(a); r2 = 1; break;
            case Fpatan: r1 = Math.Atan2(b, a); break;
            case Fsin: r1 = Math.Sin(a); break;
            case Fcos: r1 = Math.Cos(a); break;
            default: r1 = Math.Sin(a); r2 = Math.Cos(a); break;
        }

        if (!double.IsNaN(r1) && r1 != Math.Round(r1))
        {
            env.Flags |= FloatFlags.Inexact;
        }

        if (cpu.X87Commit(ref env, ref op))
        {
            Float80 first = double.IsNaN(r1) ? X87Arithmetic.Indefinite : FromDouble(r1);
            cpu._fsw &= unchecked((ushort)~X86Cpu.FswC2);
            Finish(cpu, kind, first, FromDouble(r2));
        }
    }

    private static void Finish(X86Cpu cpu, int kind, Float80 first, Float80 second)
    {
        switch (kind)
        {
            case Fyl2x:
            case Fyl2xp1:
            case Fpatan:
                cpu.St(1) = first;
                cpu.FpuPop();
                break;
            case Fptan:
                cpu.St(0) = first;
                cpu.FpuPush(second);
                break;
            case Fsincos:
                cpu.St(0) = first;
                cpu.FpuPush(second);
                break;
            default:
                cpu.St(0) = first;
                break;
        }
    }

    public static double ToDouble(Float80 v)
    {
        var env = new FloatEnvironment();
        return BitConverter.UInt64BitsToDouble((ulong)X87Arithmetic.Store(v, FloatFormat.Double, ref env));
    }

    public static Float80 FromDouble(double d)
    {
        var env = new FloatEnvironment();
        return X87Arithmetic.Load(SoftFloat.Unpack64(BitConverter.DoubleToUInt64Bits(d), false), ref env);
    }
}
