using System.Runtime.Intrinsics;

namespace SharpVisor.Emulator;

/// <summary>SSE floating-point instructions (Aux selects the operation for the arithmetic forms).</summary>
internal static class SseFloatHandlers
{
    private static FloatValue S(uint bits, in FloatEnvironment env) => SoftFloat.Unpack32(bits, env.DenormalsAreZero);

    private static FloatValue D(ulong bits, in FloatEnvironment env) => SoftFloat.Unpack64(bits, env.DenormalsAreZero);

    public static void PackedSingle(X86Cpu cpu, ref Op op)
    {
        cpu.CheckSse();
        Vector128<uint> b = cpu.SseSource(ref op).AsUInt32();
        Vector128<uint> a = cpu.Xmm(op.Reg).AsUInt32();
        FloatEnvironment env = cpu.SimdEnvironment();
        int o = op.Aux;
        var r = Vector128.Create(
            SseFloat.Single(o, a.GetElement(0), b.GetElement(0), ref env),
            SseFloat.Single(o, a.GetElement(1), b.GetElement(1), ref env),
            SseFloat.Single(o, a.GetElement(2), b.GetElement(2), ref env),
            SseFloat.Single(o, a.GetElement(3), b.GetElement(3), ref env));
        cpu.CommitSimd(ref env);
        cpu.Xmm(op.Reg) = r.AsByte();
    }

    public static void PackedDouble(X86Cpu cpu, ref Op op)
    {
        cpu.CheckSse();
        Vector128<ulong> b = cpu.SseSource(ref op).AsUInt64();
        Vector128<ulong> a = cpu.Xmm(op.Reg).AsUInt64();
        FloatEnvironment env = cpu.SimdEnvironment();
        int o = op.Aux;
        var r = Vector128.Create(
            SseFloat.Double(o, a.GetElement(0), b.GetElement(0), ref env),
            SseFloat.Double(o, a.GetElement(1), b.GetElement(1), ref env));
        cpu.CommitSimd(ref env);
        cpu.Xmm(op.Reg) = r.AsByte();
    }

    public static void ScalarSingle(X86Cpu cpu, ref Op op)
    {
        cpu.CheckSse();
        uint b = cpu.SseSource(ref op).AsUInt32().ToScalar();
        ref Vector128<byte> d = ref cpu.Xmm(op.Reg);
        FloatEnvironment env = cpu.SimdEnvironment();
        uint r = SseFloat.Single(op.Aux, d.AsUInt32().ToScalar(), b, ref env);
        cpu.CommitSimd(ref env);
        d = d.AsUInt32().WithElement(0, r).AsByte();
    }

    public static void ScalarDouble(X86Cpu cpu, ref Op op)
    {
        cpu.CheckSse();
        ulong b = cpu.SseSource(ref op).AsUInt64().ToScalar();
        ref Vector128<byte> d = ref cpu.Xmm(op.Reg);
        FloatEnvironment env = cpu.SimdEnvironment();
        ulong r = SseFloat.Double(op.Aux, d.AsUInt64().ToScalar(), b, ref env);
        cpu.CommitSimd(ref env);
        d = d.AsUInt64().WithElement(0, r).AsByte();
    }

    /// <summary>CMPPS/CMPPD/CMPSS/CMPSD; Aux: bit 0 double, bit 1 scalar. Imm = predicate.</summary>
    public static void Compare(X86Cpu cpu, ref Op op)
    {
        cpu.CheckSse();
        Vector128<byte> b = cpu.SseSource(ref op);
        ref Vector128<byte> d = ref cpu.Xmm(op.Reg);
        FloatEnvironment env = cpu.SimdEnvironment();
        int predicate = (int)op.Imm & 7;
        bool isDouble = (op.Aux & 1) != 0;
        bool scalar = (op.Aux & 2) != 0;
        Vector128<byte> r;
        if (isDouble)
        {
            Vector128<ulong> x = d.AsUInt64();
            Vector128<ulong> y = b.AsUInt64();
            int lanes = scalar ? 1 : 2;
            for (int i = 0; i < lanes; i++)
            {
                bool t = SseFloat.ComparePredicate(predicate, D(x.GetElement(i), env), D(y.GetElement(i), env), ref env);
                x = x.WithElement(i, t ? ulong.MaxValue : 0);
            }

            r = x.AsByte();
        }
        else
        {
            Vector128<uint> x = d.AsUInt32();
            Vector128<uint> y = b.AsUInt32();
            int lanes = scalar ? 1 : 4;
            for (int i = 0; i < lanes; i++)
            {
                bool t = SseFloat.ComparePredicate(predicate, S(x.GetElement(i), env), S(y.GetElement(i), env), ref env);
                x = x.WithElement(i, t ? uint.MaxValue : 0);
            }

            r = x.AsByte();
        }

        cpu.CommitSimd(ref env);
        d = r;
    }

    /// <summary>COMISS/UCOMISS/COMISD/UCOMISD; Aux: bit 0 double, bit 1 signalling (COMI).</summary>
    public static void CompareToFlags(X86Cpu cpu, ref Op op)
    {
        cpu.CheckSse();
        Vector128<byte> b = cpu.SseSource(ref op);
        Vector128<byte> a = cpu.Xmm(op.Reg);
        FloatEnvironment env = cpu.SimdEnvironment();
        bool signalling = (op.Aux & 2) != 0;
        ulong flags = (op.Aux & 1) != 0
            ? SseFloat.CompareFlags(D(a.AsUInt64().ToScalar(), env), D(b.AsUInt64().ToScalar(), env), signalling, ref env)
            : SseFloat.CompareFlags(S(a.AsUInt32().ToScalar(), env), S(b.AsUInt32().ToScalar(), env), signalling, ref env);
        cpu.CommitSimd(ref env);
        cpu.SetStatusFlags(flags);
    }

    /// <summary>CVTSI2SS/CVTSI2SD xmm, r/m32/64 (OpSize = integer size, Aux bit 0 = double).</summary>
    public static void IntegerToScalar(X86Cpu cpu, ref Op op)
    {
        cpu.CheckSse();
        long value;
        if ((op.Flags & OpFlags.Memory) != 0)
        {
            ulong linear = cpu.Linear(ref op, op.OpSize, MemoryAccess.Read);
            value = op.OpSize == 8 ? (long)cpu.Read64(linear) : (int)cpu.Read32(linear);
        }
        else
        {
            value = op.OpSize == 8 ? (long)Size64.ReadReg(cpu, op.Rm) : (int)Size32.ReadReg(cpu, op.Rm);
        }

        ref Vector128<byte> d = ref cpu.Xmm(op.Reg);
        FloatEnvironment env = cpu.SimdEnvironment();
        if ((op.Aux & 1) != 0)
        {
            ulong r = (ulong)SoftFloat.FromInt64(FloatFormat.Double, value, ref env);
            cpu.CommitSimd(ref env);
            d = d.AsUInt64().WithElement(0, r).AsByte();
        }
        else
        {
            uint r = (uint)SoftFloat.FromInt64(FloatFormat.Single, value, ref env);
            cpu.CommitSimd(ref env);
            d = d.AsUInt32().WithElement(0, r).AsByte();
        }
    }

    /// <summary>CVT(T)SS2SI/CVT(T)SD2SI r32/64, xmm/m (Aux: bit 0 double source, bit 1 truncate, bit 2 64-bit result).</summary>
    public static void ScalarToInteger(X86Cpu cpu, ref Op op)
    {
        cpu.CheckSse();
        Vector128<byte> b = cpu.SseSource(ref op);
        FloatEnvironment env = cpu.SimdEnvironment();
        FloatValue v = (op.Aux & 1) != 0 ? D(b.AsUInt64().ToScalar(), env) : S(b.AsUInt32().ToScalar(), env);
        int mode = (op.Aux & 2) != 0 ? RoundingMode.TowardZero : env.Rounding;
        bool wide = (op.Aux & 4) != 0;
        long r = SoftFloat.ToInt(v, wide ? 64 : 32, mode, ref env);
        cpu.CommitSimd(ref env);
        if (wide)
        {
            Size64.WriteReg(cpu, op.Reg, (ulong)r);
        }
        else
        {
            Size32.WriteReg(cpu, op.Reg, (uint)(int)r);
        }
    }

    /// <summary>CVTSS2SD (Aux 0) and CVTSD2SS (Aux 1): lane 0, others kept.</summary>
    public static void ConvertScalar(X86Cpu cpu, ref Op op)
    {
        cpu.CheckSse();
        Vector128<byte> b = cpu.SseSource(ref op);
        ref Vector128<byte> d = ref cpu.Xmm(op.Reg);
        FloatEnvironment env = cpu.SimdEnvironment();
        if (op.Aux == 0)
        {
            ulong r = (ulong)SseFloat.Convert(FloatFormat.Double, S(b.AsUInt32().ToScalar(), env), ref env);
            cpu.CommitSimd(ref env);
            d = d.AsUInt64().WithElement(0, r).AsByte();
        }
        else
        {
            uint r = (uint)SseFloat.Convert(FloatFormat.Single, D(b.AsUInt64().ToScalar(), env), ref env);
            cpu.CommitSimd(ref env);
            d = d.AsUInt32().WithElement(0, r).AsByte();
        }
    }

    public const int CvtPs2Pd = 0;
    public const int CvtPd2Ps = 1;
    public const int CvtDq2Ps = 2;
    public const int CvtPs2Dq = 3;
    public const int CvttPs2Dq = 4;
    public const int CvtDq2Pd = 5;
    public const int CvtPd2Dq = 6;
    public const int CvttPd2Dq = 7;

    /// <summary>Packed conversions (Aux = one of the Cvt* constants).</summary>
    public static void ConvertPacked(X86Cpu cpu, ref Op op)
    {
        cpu.CheckSse();
        Vector128<byte> b = cpu.SseSource(ref op);
        FloatEnvironment env = cpu.SimdEnvironment();
        Vector128<byte> r;
        switch (op.Aux)
        {
            case CvtPs2Pd:
                r = Vector128.Create(
                    (ulong)SseFloat.Convert(FloatFormat.Double, S(b.AsUInt32().GetElement(0), env), ref env),
                    (ulong)SseFloat.Convert(FloatFormat.Double, S(b.AsUInt32().GetElement(1), env), ref env)).AsByte();
                break;
            case CvtPd2Ps:
                r = Vector128.Create(
                    (uint)SseFloat.Convert(FloatFormat.Single, D(b.AsUInt64().GetElement(0), env), ref env),
                    (uint)SseFloat.Convert(FloatFormat.Single, D(b.AsUInt64().GetElement(1), env), ref env),
                    0u,
                    0u).AsByte();
                break;
            case CvtDq2Ps:
            {
                Vector128<int> x = b.AsInt32();
                r = Vector128.Create(
                    (uint)SoftFloat.FromInt64(FloatFormat.Single, x.GetElement(0), ref env),
                    (uint)SoftFloat.FromInt64(FloatFormat.Single, x.GetElement(1), ref env),
                    (uint)SoftFloat.FromInt64(FloatFormat.Single, x.GetElement(2), ref env),
                    (uint)SoftFloat.FromInt64(FloatFormat.Single, x.GetElement(3), ref env)).AsByte();
                break;
            }

            case CvtPs2Dq:
            case CvttPs2Dq:
            {
                int mode = op.Aux == CvttPs2Dq ? RoundingMode.TowardZero : env.Rounding;
                Vector128<uint> x = b.AsUInt32();
                r = Vector128.Create(
                    (int)SoftFloat.ToInt(S(x.GetElement(0), env), 32, mode, ref env),
                    (int)SoftFloat.ToInt(S(x.GetElement(1), env), 32, mode, ref env),
                    (int)SoftFloat.ToInt(S(x.GetElement(2), env), 32, mode, ref env),
                    (int)SoftFloat.ToInt(S(x.GetElement(3), env), 32, mode, ref env)).AsByte();
                break;
            }

            case CvtDq2Pd:
            {
                Vector128<int> x = b.AsInt32();
                r = Vector128.Create(
                    (ulong)SoftFloat.FromInt64(FloatFormat.Double, x.GetElement(0), ref env),
                    (ulong)SoftFloat.FromInt64(FloatFormat.Double, x.GetElement(1), ref env)).AsByte();
                break;
            }

            default:
            {
                int mode = op.Aux == CvttPd2Dq ? RoundingMode.TowardZero : env.Rounding;
                Vector128<ulong> x = b.AsUInt64();
                r = Vector128.Create(
                    (int)SoftFloat.ToInt(D(x.GetElement(0), env), 32, mode, ref env),
                    (int)SoftFloat.ToInt(D(x.GetElement(1), env), 32, mode, ref env),
                    0,
                    0).AsByte();
                break;
            }
        }

        cpu.CommitSimd(ref env);
        cpu.Xmm(op.Reg) = r;
    }

    /// <summary>ROUNDPS/PD/SS/SD (Aux: bit 0 double, bit 1 scalar; Imm = mode control).</summary>
    public static void Round(X86Cpu cpu, ref Op op)
    {
        cpu.CheckSse();
        Vector128<byte> b = cpu.SseSource(ref op);
        ref Vector128<byte> d = ref cpu.Xmm(op.Reg);
        FloatEnvironment env = cpu.SimdEnvironment();
        int imm = (int)op.Imm;
        bool scalar = (op.Aux & 2) != 0;
        Vector128<byte> r;
        if ((op.Aux & 1) != 0)
        {
            Vector128<ulong> x = scalar ? d.AsUInt64() : b.AsUInt64();
            Vector128<ulong> y = b.AsUInt64();
            for (int i = 0; i < (scalar ? 1 : 2); i++)
            {
                x = x.WithElement(i, (ulong)SseFloat.RoundIntegral(FloatFormat.Double, D(y.GetElement(i), env), imm, ref env));
            }

            r = x.AsByte();
        }
        else
        {
            Vector128<uint> x = scalar ? d.AsUInt32() : b.AsUInt32();
            Vector128<uint> y = b.AsUInt32();
            for (int i = 0; i < (scalar ? 1 : 4); i++)
            {
                x = x.WithElement(i, (uint)SseFloat.RoundIntegral(FloatFormat.Single, S(y.GetElement(i), env), imm, ref env));
            }

            r = x.AsByte();
        }

        cpu.CommitSimd(ref env);
        d = r;
    }

    /// <summary>ADDSUBPS/PD, HADDPS/PD, HSUBPS/PD (Aux: bit 0 double, bits 1-2 kind: 0 addsub, 1 hadd, 2 hsub).</summary>
    public static void Horizontal(X86Cpu cpu, ref Op op)
    {
        cpu.CheckSse();
        Vector128<byte> b = cpu.SseSource(ref op);
        ref Vector128<byte> d = ref cpu.Xmm(op.Reg);
        FloatEnvironment env = cpu.SimdEnvironment();
        int kind = op.Aux >> 1;
        Vector128<byte> r;
        if ((op.Aux & 1) != 0)
        {
            Vector128<ulong> x = d.AsUInt64();
            Vector128<ulong> y = b.AsUInt64();
            r = kind switch
            {
                0 => Vector128.Create(
                    SseFloat.Double(SseFloat.OpSub, x.GetElement(0), y.GetElement(0), ref env),
                    SseFloat.Double(SseFloat.OpAdd, x.GetElement(1), y.GetElement(1), ref env)).AsByte(),
                _ => Vector128.Create(
                    SseFloat.Double(kind == 1 ? SseFloat.OpAdd : SseFloat.OpSub, x.GetElement(0), x.GetElement(1), ref env),
                    SseFloat.Double(kind == 1 ? SseFloat.OpAdd : SseFloat.OpSub, y.GetElement(0), y.GetElement(1), ref env)).AsByte(),
            };
        }
        else
        {
            Vector128<uint> x = d.AsUInt32();
            Vector128<uint> y = b.AsUInt32();
            int o = kind == 1 ? SseFloat.OpAdd : SseFloat.OpSub;
            r = kind switch
            {
                0 => Vector128.Create(
                    SseFloat.Single(SseFloat.OpSub, x.GetElement(0), y.GetElement(0), ref env),
                    SseFloat.Single(SseFloat.OpAdd, x.GetElement(1), y.GetElement(1), ref env),
                    SseFloat.Single(SseFloat.OpSub, x.GetElement(2), y.GetElement(2), ref env),
                    SseFloat.Single(SseFloat.OpAdd, x.GetElement(3), y.GetElement(3), ref env)).AsByte(),
                _ => Vector128.Create(
                    SseFloat.Single(o, x.GetElement(0), x.GetElement(1), ref env),
                    SseFloat.Single(o, x.GetElement(2), x.GetElement(3), ref env),
                    SseFloat.Single(o, y.GetElement(0), y.GetElement(1), ref env),
                    SseFloat.Single(o, y.GetElement(2), y.GetElement(3), ref env)).AsByte(),
            };
        }

        cpu.CommitSimd(ref env);
        d = r;
    }

    /// <summary>
    /// DPPS/DPPD run in stages (multiply, then add), each raising its exceptions as a packed
    /// instruction does: a fault in the add stage leaves the multiply stage's flags in MXCSR.
    /// </summary>
    private static void CommitStage(X86Cpu cpu, ref FloatEnvironment env)
    {
        cpu.CommitSimd(ref env);
        env.Flags = 0;
    }

    /// <summary>
    /// DPPS (Aux 0) and DPPD (Aux 1): masked products summed pairwise into the lanes selected by
    /// imm8[3:0]. Intel processors sum in a different operand order for each destination lane
    /// (which decides the propagated NaN); this follows that order. AMD processors sum every lane
    /// in the natural order, (p0 + p1) + (p2 + p3) (measured).
    /// </summary>
    public static void DotProduct(X86Cpu cpu, ref Op op)
    {
        cpu.CheckSse();
        Vector128<byte> b = cpu.SseSource(ref op);
        ref Vector128<byte> d = ref cpu.Xmm(op.Reg);
        FloatEnvironment env = cpu.SimdEnvironment();
        int imm = (int)op.Imm;
        Vector128<byte> r;
        if (op.Aux == 1)
        {
            Vector128<ulong> x = d.AsUInt64();
            Vector128<ulong> y = b.AsUInt64();
            ulong t0 = (imm & 0x10) != 0 ? SseFloat.Double(SseFloat.OpMul, x.GetElement(0), y.GetElement(0), ref env) : 0;
            ulong t1 = (imm & 0x20) != 0 ? SseFloat.Double(SseFloat.OpMul, x.GetElement(1), y.GetElement(1), ref env) : 0;
            CommitStage(cpu, ref env);
            ulong sum0 = SseFloat.Double(SseFloat.OpAdd, t0, t1, ref env);
            ulong sum1 = cpu._amd ? sum0 : SseFloat.Double(SseFloat.OpAdd, t1, t0, ref env);
            r = Vector128.Create((imm & 1) != 0 ? sum0 : 0, (imm & 2) != 0 ? sum1 : 0).AsByte();
        }
        else
        {
            Vector128<uint> x = d.AsUInt32();
            Vector128<uint> y = b.AsUInt32();
            Span<uint> t = stackalloc uint[4];
            for (int i = 0; i < 4; i++)
            {
                t[i] = (imm & (0x10 << i)) != 0 ? SseFloat.Single(SseFloat.OpMul, x.GetElement(i), y.GetElement(i), ref env) : 0;
            }

            CommitStage(cpu, ref env);

            // The pair sums are a stage of their own (DPPS has three).
            uint lowEven = SseFloat.Single(SseFloat.OpAdd, t[1], t[0], ref env);
            uint lowOdd = SseFloat.Single(SseFloat.OpAdd, t[0], t[1], ref env);
            uint highEven = SseFloat.Single(SseFloat.OpAdd, t[3], t[2], ref env);
            uint highOdd = SseFloat.Single(SseFloat.OpAdd, t[2], t[3], ref env);
            CommitStage(cpu, ref env);
            Span<uint> lanes = stackalloc uint[4];
            for (int j = 0; j < 4; j++)
            {
                bool even = (j & 1) == 0;
                if (cpu._amd)
                {
                    lanes[j] = (imm & (1 << j)) != 0 ? SseFloat.Single(SseFloat.OpAdd, lowOdd, highOdd, ref env) : 0;
                    continue;
                }

                uint low = even ? lowEven : lowOdd;
                uint high = even ? highEven : highOdd;
                uint sum = j < 2 ? SseFloat.Single(SseFloat.OpAdd, low, high, ref env) : SseFloat.Single(SseFloat.OpAdd, high, low, ref env);
                lanes[j] = (imm & (1 << j)) != 0 ? sum : 0;
            }

            r = Vector128.Create(lanes[0], lanes[1], lanes[2], lanes[3]).AsByte();
        }

        cpu.CommitSimd(ref env);
        d = r;
    }

    /// <summary>RCPPS/RCPSS/RSQRTPS/RSQRTSS (Aux: bit 0 reciprocal square root, bit 1 scalar): 12-bit approximations, no exceptions.</summary>
    public static void Approximate(X86Cpu cpu, ref Op op)
    {
        cpu.CheckSse();
        Vector128<uint> b = cpu.SseSource(ref op).AsUInt32();
        ref Vector128<byte> d = ref cpu.Xmm(op.Reg);
        bool sqrt = (op.Aux & 1) != 0;
        bool scalar = (op.Aux & 2) != 0;
        Vector128<uint> x = scalar ? d.AsUInt32() : b;
        for (int i = 0; i < (scalar ? 1 : 4); i++)
        {
            x = x.WithElement(i, ApproximateLane(b.GetElement(i), sqrt));
        }

        d = x.AsByte();
    }

    /// <summary>1/x or 1/sqrt(x) within the architectural 1.5 × 2^−12 relative error: the correctly rounded value truncated to 12 fraction bits.</summary>
    private static uint ApproximateLane(uint bits, bool sqrt)
    {
        var env = new FloatEnvironment { DenormalsAreZero = true, FlushToZero = true };
        FloatValue v = SoftFloat.Unpack32(bits, denormalsAreZero: true);
        bool sign = v.Sign;
        switch (v.Class)
        {
            case FloatClass.QuietNaN:
            case FloatClass.SignalingNaN:
                return (uint)SoftFloat.PackNaN(FloatFormat.Single, v);
            case FloatClass.Zero:
                return sign ? 0xFF80_0000u : 0x7F80_0000u;
            case FloatClass.Infinity:
                return sqrt && sign ? 0xFFC0_0000u : sign ? 0x8000_0000u : 0u;
        }

        if (sqrt && sign)
        {
            return 0xFFC0_0000u;
        }

        FloatValue one = SoftFloat.Unpack32(0x3F80_0000u, false);
        uint result;
        if (sqrt)
        {
            FloatValue root = SoftFloat.Unpack64((ulong)SoftFloat.Sqrt(FloatFormat.Double, v, ref env), false);
            result = (uint)SoftFloat.Divide(FloatFormat.Single, one, root, ref env);
        }
        else
        {
            result = (uint)SoftFloat.Divide(FloatFormat.Single, one, v, ref env);
        }

        return (result & 0x7F80_0000u) == 0 ? result & 0x8000_0000u : result & 0xFFFF_F800u;
    }
}
