namespace SharpVisor.Emulator;

/// <summary>
/// x87 semantics on extended-precision values: operand classification (unsupported encodings,
/// denormals), the x87 NaN rule (a QNaN beats an SNaN, else the larger significand), and
/// rounding to the precision selected by FCW.PC.
/// </summary>
internal static class X87Arithmetic
{
    public const int Add = 0;
    public const int Multiply = 1;
    public const int Subtract = 4;
    public const int SubtractReverse = 5;
    public const int Divide = 6;
    public const int DivideReverse = 7;

    public static readonly Float80 Indefinite = new(0xC000_0000_0000_0000, 0xFFFF);

    /// <summary>The format arithmetic rounds to under FCW.PC (00 single, 10 double, 11 extended; 01 reserved = extended).</summary>
    public static FloatFormat Format(ushort fcw) => ((fcw >> 8) & 3) switch
    {
        0 => FloatFormat.Extended.WithPrecision(24),
        2 => FloatFormat.Extended.WithPrecision(53),
        _ => FloatFormat.Extended,
    };

    /// <summary>The NaN an operation with NaN operands returns (quieted).</summary>
    public static Float80 PickNaN(in FloatValue x, in FloatValue y)
    {
        FloatValue chosen;
        if (x.IsNaN && y.IsNaN)
        {
            if (x.Class != y.Class)
            {
                chosen = x.Class == FloatClass.QuietNaN ? x : y;
            }
            else
            {
                ulong mx = x.Significand << 1;
                ulong my = y.Significand << 1;
                chosen = mx > my ? x : my > mx ? y : (x.Sign ? y : x);
            }
        }
        else
        {
            chosen = x.IsNaN ? x : y;
        }

        return Quiet(chosen);
    }

    public static Float80 Quiet(in FloatValue nan) =>
        new(nan.Significand | 0xC000_0000_0000_0000, (ushort)(0x7FFF | (nan.Sign ? 0x8000 : 0)));

    /// <summary>A binary arithmetic operation (Add, Multiply, Subtract(Reverse), Divide(Reverse)) of a = ST(0)-side and b operands.</summary>
    public static Float80 Binary(int operation, Float80 a, Float80 b, ushort fcw, ref FloatEnvironment env) =>
        Binary(operation, SoftFloat.Unpack80(a), SoftFloat.Unpack80(b), fcw, ref env);

    public static Float80 Binary(int operation, FloatValue x, FloatValue y, ushort fcw, ref FloatEnvironment env)
    {
        if (operation is SubtractReverse or DivideReverse)
        {
            (x, y) = (y, x);
            operation--;
        }

        if (x.Class == FloatClass.Unsupported || y.Class == FloatClass.Unsupported)
        {
            env.Flags |= FloatFlags.Invalid;
            return Indefinite;
        }

        if (x.IsNaN || y.IsNaN)
        {
            if (x.Class == FloatClass.SignalingNaN || y.Class == FloatClass.SignalingNaN)
            {
                env.Flags |= FloatFlags.Invalid;
            }

            return PickNaN(x, y);
        }

        uint before = env.Flags;
        FloatFormat f = Format(fcw);
        UInt128 r = operation switch
        {
            Add => SoftFloat.Add(f, x, y, false, ref env),
            Subtract => SoftFloat.Add(f, x, y, true, ref env),
            Multiply => SoftFloat.Multiply(f, x, y, ref env),
            _ => SoftFloat.Divide(f, x, y, ref env),
        };
        NoteDenormal(x, y, before, ref env);
        return SoftFloat.ToFloat80(r);
    }

    /// <summary>Denormal operands raise DE unless the operation was invalid or a divide by zero.</summary>
    public static void NoteDenormal(in FloatValue x, in FloatValue y, uint before, ref FloatEnvironment env)
    {
        if ((x.Denormal || y.Denormal) && ((env.Flags & ~before) & (FloatFlags.Invalid | FloatFlags.DivideByZero)) == 0)
        {
            env.Flags |= FloatFlags.Denormal;
        }
    }

    public static Float80 Sqrt(Float80 a, ushort fcw, ref FloatEnvironment env)
    {
        FloatValue x = SoftFloat.Unpack80(a);
        if (x.Class == FloatClass.Unsupported)
        {
            env.Flags |= FloatFlags.Invalid;
            return Indefinite;
        }

        if (x.IsNaN)
        {
            if (x.Class == FloatClass.SignalingNaN)
            {
                env.Flags |= FloatFlags.Invalid;
            }

            return Quiet(x);
        }

        uint before = env.Flags;
        Float80 r = SoftFloat.ToFloat80(SoftFloat.Sqrt(Format(fcw), x, ref env));
        NoteDenormal(x, x, before, ref env);
        return r;
    }

    /// <summary>Converts a single/double/integer-loaded value exactly (FLD m32/m64): SNaN raises IE and is quieted, denormals raise DE.</summary>
    public static Float80 Load(in FloatValue v, ref FloatEnvironment env)
    {
        if (v.IsNaN)
        {
            if (v.Class == FloatClass.SignalingNaN)
            {
                env.Flags |= FloatFlags.Invalid;
            }

            return Quiet(v);
        }

        if (v.Denormal)
        {
            env.Flags |= FloatFlags.Denormal;
        }

        var exact = new FloatEnvironment();
        return SoftFloat.ToFloat80(SoftFloat.Round(FloatFormat.Extended, v, ref exact));
    }

    /// <summary>FST m32/m64: rounds ST(0) to the memory format (RC applies, PC does not).</summary>
    public static UInt128 Store(Float80 a, FloatFormat f, ref FloatEnvironment env)
    {
        FloatValue x = SoftFloat.Unpack80(a);
        if (x.Class == FloatClass.Unsupported)
        {
            env.Flags |= FloatFlags.Invalid;
            return SoftFloat.DefaultNaN(f);
        }

        if (x.IsNaN)
        {
            if (x.Class == FloatClass.SignalingNaN)
            {
                env.Flags |= FloatFlags.Invalid;
            }

            return SoftFloat.PackNaN(f, x);
        }

        return SoftFloat.Round(f, x, ref env);
    }

    /// <summary>Compare ST(0) with b: condition codes C3,C2,C0 as (ZF,PF,CF)-like bits; <paramref name="quiet"/> = FUCOM (QNaN raises nothing).</summary>
    public static int Compare(FloatValue x, FloatValue y, bool quiet, ref FloatEnvironment env)
    {
        if (x.Class == FloatClass.Unsupported || y.Class == FloatClass.Unsupported || x.IsNaN || y.IsNaN)
        {
            if (!quiet || x.Class is FloatClass.SignalingNaN or FloatClass.Unsupported || y.Class is FloatClass.SignalingNaN or FloatClass.Unsupported)
            {
                env.Flags |= FloatFlags.Invalid;
            }

            return -2;
        }

        if (x.Denormal || y.Denormal)
        {
            env.Flags |= FloatFlags.Denormal;
        }

        return SoftFloat.Compare(x, y);
    }

    /// <summary>Unpacks a memory operand (single, double or integer) without quieting NaNs, for arithmetic and compares.</summary>
    public static FloatValue FromInteger(long value)
    {
        var exact = new FloatEnvironment();
        return SoftFloat.Unpack80(SoftFloat.ToFloat80(SoftFloat.FromInt64(FloatFormat.Extended, value, ref exact)));
    }
}
