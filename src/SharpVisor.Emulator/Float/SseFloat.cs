namespace SharpVisor.Emulator;

/// <summary>
/// Per-lane SSE floating-point semantics (single and double): x86 NaN propagation (the first
/// NaN operand, quieted), denormal-operand and invalid detection, DAZ/FTZ, and the SSE-specific
/// MIN/MAX, compare predicates and integer conversions.
/// </summary>
internal static class SseFloat
{
    public const int OpAdd = 0;
    public const int OpSub = 1;
    public const int OpMul = 2;
    public const int OpDiv = 3;
    public const int OpMin = 4;
    public const int OpMax = 5;
    public const int OpSqrt = 6;

    public static uint Single(int operation, uint a, uint b, ref FloatEnvironment env)
    {
        FloatEnvironment lane = env with { Flags = 0 };
        uint r = (uint)Lane(FloatFormat.Single, operation, SoftFloat.Unpack32(a, env.DenormalsAreZero), SoftFloat.Unpack32(b, env.DenormalsAreZero), a, b, ref lane);
        env.Flags |= LaneFlags(lane.Flags);
        return r;
    }

    public static ulong Double(int operation, ulong a, ulong b, ref FloatEnvironment env)
    {
        FloatEnvironment lane = env with { Flags = 0 };
        ulong r = (ulong)Lane(FloatFormat.Double, operation, SoftFloat.Unpack64(a, env.DenormalsAreZero), SoftFloat.Unpack64(b, env.DenormalsAreZero), a, b, ref lane);
        env.Flags |= LaneFlags(lane.Flags);
        return r;
    }

    /// <summary>Within one lane an invalid or divide-by-zero condition outranks a denormal operand.</summary>
    public static uint LaneFlags(uint flags) =>
        (flags & (FloatFlags.Invalid | FloatFlags.DivideByZero)) != 0 ? flags & ~FloatFlags.Denormal : flags;

    private static UInt128 Lane(FloatFormat f, int operation, FloatValue x, FloatValue y, ulong rawA, ulong rawB, ref FloatEnvironment env)
    {
        if (operation == OpSqrt)
        {
            // SQRT has a single source (the second operand).
            if (y.IsNaN)
            {
                if (y.Class == FloatClass.SignalingNaN)
                {
                    env.Flags |= FloatFlags.Invalid;
                }

                return SoftFloat.PackNaN(f, y);
            }

            NoteDenormal(y, ref env);
            return SoftFloat.Sqrt(f, y, ref env);
        }

        if (operation is OpMin or OpMax)
        {
            // Not IEEE min/max: any NaN, or two zeros, yields the second operand.
            if (x.IsNaN || y.IsNaN)
            {
                env.Flags |= FloatFlags.Invalid;
                return Flushed(f, rawB, y, env);
            }

            NoteDenormal(x, ref env);
            NoteDenormal(y, ref env);
            if (x.Class == FloatClass.Zero && y.Class == FloatClass.Zero)
            {
                return Flushed(f, rawB, y, env);
            }

            int order = SoftFloat.Compare(x, y);
            bool pickFirst = operation == OpMin ? order < 0 : order > 0;
            return pickFirst ? Flushed(f, rawA, x, env) : Flushed(f, rawB, y, env);
        }

        if (x.IsNaN || y.IsNaN)
        {
            if (x.Class == FloatClass.SignalingNaN || y.Class == FloatClass.SignalingNaN)
            {
                env.Flags |= FloatFlags.Invalid;
            }

            return SoftFloat.PackNaN(f, x.IsNaN ? x : y);
        }

        NoteDenormal(x, ref env);
        NoteDenormal(y, ref env);
        return operation switch
        {
            OpAdd => SoftFloat.Add(f, x, y, false, ref env),
            OpSub => SoftFloat.Add(f, x, y, true, ref env),
            OpMul => SoftFloat.Multiply(f, x, y, ref env),
            _ => SoftFloat.Divide(f, x, y, ref env),
        };
    }

    /// <summary>A MIN/MAX result: the operand itself, or zero when DAZ read it as zero (FTZ does not apply).</summary>
    private static UInt128 Flushed(FloatFormat f, ulong raw, in FloatValue v, in FloatEnvironment env) =>
        v.Denormal && env.DenormalsAreZero ? SoftFloat.PackZero(f, v.Sign) : raw;

    public static void NoteDenormal(in FloatValue v, ref FloatEnvironment env)
    {
        if (v.Denormal && !env.DenormalsAreZero)
        {
            env.Flags |= FloatFlags.Denormal;
        }
    }

    /// <summary>CMPPS/CMPSS predicate (imm8 bits 2:0): all ones when true.</summary>
    public static bool ComparePredicate(int predicate, FloatValue x, FloatValue y, ref FloatEnvironment env)
    {
        bool unordered = x.IsNaN || y.IsNaN;
        bool signalsOnQuiet = predicate is 1 or 2 or 5 or 6;
        if (x.Class == FloatClass.SignalingNaN || y.Class == FloatClass.SignalingNaN || (unordered && signalsOnQuiet))
        {
            env.Flags |= FloatFlags.Invalid;
        }

        if (!unordered)
        {
            NoteDenormal(x, ref env);
            NoteDenormal(y, ref env);
        }

        int order = unordered ? 0 : SoftFloat.Compare(x, y);
        return (predicate & 7) switch
        {
            0 => !unordered && order == 0,
            1 => !unordered && order < 0,
            2 => !unordered && order <= 0,
            3 => unordered,
            4 => unordered || order != 0,
            5 => unordered || order >= 0,
            6 => unordered || order > 0,
            _ => !unordered,
        };
    }

    /// <summary>COMISS/UCOMISS result as ZF/PF/CF (signalling = COMI: any NaN is invalid).</summary>
    public static ulong CompareFlags(FloatValue x, FloatValue y, bool signalling, ref FloatEnvironment env)
    {
        if (x.IsNaN || y.IsNaN)
        {
            if (signalling || x.Class == FloatClass.SignalingNaN || y.Class == FloatClass.SignalingNaN)
            {
                env.Flags |= FloatFlags.Invalid;
            }

            return RflagsBits.Zero | RflagsBits.Parity | RflagsBits.Carry;
        }

        NoteDenormal(x, ref env);
        NoteDenormal(y, ref env);
        int order = SoftFloat.Compare(x, y);
        return order == 0 ? RflagsBits.Zero : order < 0 ? RflagsBits.Carry : 0;
    }

    /// <summary>Float → float conversion (CVTSS2SD, CVTSD2SS, CVTPS2PD, CVTPD2PS).</summary>
    public static UInt128 Convert(FloatFormat to, FloatValue v, ref FloatEnvironment env)
    {
        if (v.IsNaN)
        {
            if (v.Class == FloatClass.SignalingNaN)
            {
                env.Flags |= FloatFlags.Invalid;
            }

            return SoftFloat.PackNaN(to, v);
        }

        NoteDenormal(v, ref env);
        return SoftFloat.Round(to, v, ref env);
    }

    /// <summary>ROUNDPS/PD/SS/SD: imm8[1:0] mode unless imm8[2] (use MXCSR), imm8[3] suppresses inexact.</summary>
    public static UInt128 RoundIntegral(FloatFormat f, FloatValue v, int imm, ref FloatEnvironment env)
    {
        if (v.IsNaN)
        {
            if (v.Class == FloatClass.SignalingNaN)
            {
                env.Flags |= FloatFlags.Invalid;
            }

            return SoftFloat.PackNaN(f, v);
        }

        int mode = (imm & 4) != 0 ? env.Rounding : imm & 3;
        return SoftFloat.RoundToIntegral(f, v, mode, (imm & 8) != 0, ref env);
    }
}
