using Iced.Intel;

namespace SharpVisor.Emulator.Tests.Differential;

/// <summary>The instruction families of the differential suite.</summary>
internal sealed partial class DiffGenerator
{
    private static readonly Code[] s_aluCodes = CodesFor(null,
        Mnemonic.Add, Mnemonic.Or, Mnemonic.Adc, Mnemonic.Sbb, Mnemonic.And, Mnemonic.Sub, Mnemonic.Xor, Mnemonic.Cmp,
        Mnemonic.Test, Mnemonic.Inc, Mnemonic.Dec, Mnemonic.Neg, Mnemonic.Not);

    private static readonly Code[] s_moveCodes = CodesFor(c => c is not (Code.Bswap_r16 or Code.Xlat_m8),
        Mnemonic.Mov, Mnemonic.Movzx, Mnemonic.Movsx, Mnemonic.Movsxd, Mnemonic.Lea, Mnemonic.Xchg, Mnemonic.Bswap,
        Mnemonic.Movbe, Mnemonic.Cbw, Mnemonic.Cwde, Mnemonic.Cdqe, Mnemonic.Cwd, Mnemonic.Cdq, Mnemonic.Cqo,
        Mnemonic.Lahf, Mnemonic.Sahf, Mnemonic.Nop,
        Mnemonic.Cmovo, Mnemonic.Cmovno, Mnemonic.Cmovb, Mnemonic.Cmovae, Mnemonic.Cmove, Mnemonic.Cmovne, Mnemonic.Cmovbe,
        Mnemonic.Cmova, Mnemonic.Cmovs, Mnemonic.Cmovns, Mnemonic.Cmovp, Mnemonic.Cmovnp, Mnemonic.Cmovl, Mnemonic.Cmovge,
        Mnemonic.Cmovle, Mnemonic.Cmovg,
        Mnemonic.Seto, Mnemonic.Setno, Mnemonic.Setb, Mnemonic.Setae, Mnemonic.Sete, Mnemonic.Setne, Mnemonic.Setbe,
        Mnemonic.Seta, Mnemonic.Sets, Mnemonic.Setns, Mnemonic.Setp, Mnemonic.Setnp, Mnemonic.Setl, Mnemonic.Setge,
        Mnemonic.Setle, Mnemonic.Setg);

    private static readonly Code[] s_mulDivCodes = CodesFor(null, Mnemonic.Mul, Mnemonic.Imul, Mnemonic.Div, Mnemonic.Idiv);

    private static readonly Code[] s_shiftCodes = CodesFor(null,
        Mnemonic.Rol, Mnemonic.Ror, Mnemonic.Rcl, Mnemonic.Rcr, Mnemonic.Shl, Mnemonic.Sal, Mnemonic.Shr, Mnemonic.Sar,
        Mnemonic.Shld, Mnemonic.Shrd);

    private static readonly Code[] s_bitCodes = CodesFor(null,
        Mnemonic.Bt, Mnemonic.Bts, Mnemonic.Btr, Mnemonic.Btc, Mnemonic.Bsf, Mnemonic.Bsr, Mnemonic.Tzcnt, Mnemonic.Lzcnt,
        Mnemonic.Popcnt);

    private static readonly Code[] s_atomicCodes = CodesFor(null,
        Mnemonic.Xadd, Mnemonic.Cmpxchg, Mnemonic.Cmpxchg8b, Mnemonic.Cmpxchg16b, Mnemonic.Xchg);

    private static readonly Code[] s_stackCodes = CodesFor(c => c.ToOpCode().OpCount == 0 || c.ToOpCode().GetOpKind(0) != OpCodeOperandKind.r64_opcode || true,
        Mnemonic.Push, Mnemonic.Pop, Mnemonic.Pushf, Mnemonic.Pushfq, Mnemonic.Enter, Mnemonic.Leave);

    private static readonly Code[] s_flagCodes = CodesFor(null,
        Mnemonic.Clc, Mnemonic.Stc, Mnemonic.Cmc, Mnemonic.Cld, Mnemonic.Std, Mnemonic.Lahf, Mnemonic.Sahf);

    private static readonly Code[] s_jccCodes = Enum.GetValues<Code>()
        .Where(c => c != Code.INVALID && c.ToOpCode() is { Mode64: true, OpCount: 1 } info
            && info.GetOpKind(0) is OpCodeOperandKind.br64_1 or OpCodeOperandKind.br64_4
            && c.ConditionCode() != ConditionCode.None && c.Mnemonic() is >= Mnemonic.Ja and <= Mnemonic.Js)
        .ToArray();

    private static bool NoMmx(Code c)
    {
        OpCodeInfo info = c.ToOpCode();
        for (int i = 0; i < info.OpCount; i++)
        {
            if (info.GetOpKind(i) is OpCodeOperandKind.mm_or_mem or OpCodeOperandKind.mm_reg or OpCodeOperandKind.mm_rm)
            {
                return false;
            }
        }

        return true;
    }

    private static readonly Code[] s_sseIntegerCodes = CodesFor(NoMmx,
        Mnemonic.Paddb, Mnemonic.Paddw, Mnemonic.Paddd, Mnemonic.Paddq, Mnemonic.Psubb, Mnemonic.Psubw, Mnemonic.Psubd, Mnemonic.Psubq,
        Mnemonic.Paddsb, Mnemonic.Paddsw, Mnemonic.Paddusb, Mnemonic.Paddusw, Mnemonic.Psubsb, Mnemonic.Psubsw, Mnemonic.Psubusb,
        Mnemonic.Psubusw, Mnemonic.Pmullw, Mnemonic.Pmulhw, Mnemonic.Pmulhuw, Mnemonic.Pmuludq, Mnemonic.Pmaddwd, Mnemonic.Pavgb,
        Mnemonic.Pavgw, Mnemonic.Pminub, Mnemonic.Pmaxub, Mnemonic.Pminsw, Mnemonic.Pmaxsw, Mnemonic.Psadbw, Mnemonic.Pcmpeqb,
        Mnemonic.Pcmpeqw, Mnemonic.Pcmpeqd, Mnemonic.Pcmpgtb, Mnemonic.Pcmpgtw, Mnemonic.Pcmpgtd, Mnemonic.Pand, Mnemonic.Pandn,
        Mnemonic.Por, Mnemonic.Pxor, Mnemonic.Andps, Mnemonic.Andpd, Mnemonic.Andnps, Mnemonic.Andnpd, Mnemonic.Orps, Mnemonic.Orpd,
        Mnemonic.Xorps, Mnemonic.Xorpd, Mnemonic.Punpcklbw, Mnemonic.Punpcklwd, Mnemonic.Punpckldq, Mnemonic.Punpcklqdq,
        Mnemonic.Punpckhbw, Mnemonic.Punpckhwd, Mnemonic.Punpckhdq, Mnemonic.Punpckhqdq, Mnemonic.Unpcklps, Mnemonic.Unpckhps,
        Mnemonic.Unpcklpd, Mnemonic.Unpckhpd, Mnemonic.Packsswb, Mnemonic.Packssdw, Mnemonic.Packuswb, Mnemonic.Psllw, Mnemonic.Pslld,
        Mnemonic.Psllq, Mnemonic.Psrlw, Mnemonic.Psrld, Mnemonic.Psrlq, Mnemonic.Psraw, Mnemonic.Psrad, Mnemonic.Pslldq, Mnemonic.Psrldq,
        Mnemonic.Pshufd, Mnemonic.Pshuflw, Mnemonic.Pshufhw, Mnemonic.Shufps, Mnemonic.Shufpd);

    private static readonly Code[] s_sseMoveCodes = CodesFor(NoMmx,
        Mnemonic.Movdqa, Mnemonic.Movdqu, Mnemonic.Movaps, Mnemonic.Movups, Mnemonic.Movapd, Mnemonic.Movupd, Mnemonic.Lddqu,
        Mnemonic.Movntdq, Mnemonic.Movntps, Mnemonic.Movntpd, Mnemonic.Movntdqa, Mnemonic.Movss, Mnemonic.Movsd, Mnemonic.Movlps,
        Mnemonic.Movlpd, Mnemonic.Movhps, Mnemonic.Movhpd, Mnemonic.Movhlps, Mnemonic.Movlhps, Mnemonic.Movddup, Mnemonic.Movshdup,
        Mnemonic.Movsldup, Mnemonic.Movd, Mnemonic.Movq, Mnemonic.Pmovmskb, Mnemonic.Movmskps, Mnemonic.Movmskpd, Mnemonic.Pextrb,
        Mnemonic.Pextrw, Mnemonic.Pextrd, Mnemonic.Pextrq, Mnemonic.Extractps, Mnemonic.Pinsrb, Mnemonic.Pinsrw, Mnemonic.Pinsrd,
        Mnemonic.Pinsrq, Mnemonic.Ldmxcsr, Mnemonic.Stmxcsr, Mnemonic.Fxsave64, Mnemonic.Fxrstor64, Mnemonic.Fxsave);

    private static readonly Code[] s_ssse3Codes = CodesFor(NoMmx,
        Mnemonic.Pshufb, Mnemonic.Pabsb, Mnemonic.Pabsw, Mnemonic.Pabsd, Mnemonic.Phaddw, Mnemonic.Phaddd, Mnemonic.Phaddsw,
        Mnemonic.Phsubw, Mnemonic.Phsubd, Mnemonic.Phsubsw, Mnemonic.Pmaddubsw, Mnemonic.Pmulhrsw, Mnemonic.Psignb, Mnemonic.Psignw,
        Mnemonic.Psignd, Mnemonic.Palignr);

    private static readonly Code[] s_sse41IntegerCodes = CodesFor(NoMmx,
        Mnemonic.Packusdw, Mnemonic.Pcmpeqq, Mnemonic.Pcmpgtq, Mnemonic.Pmaxsb, Mnemonic.Pmaxsd, Mnemonic.Pmaxud, Mnemonic.Pmaxuw,
        Mnemonic.Pminsb, Mnemonic.Pminsd, Mnemonic.Pminud, Mnemonic.Pminuw, Mnemonic.Pmuldq, Mnemonic.Pmulld, Mnemonic.Phminposuw,
        Mnemonic.Pmovsxbw, Mnemonic.Pmovsxbd, Mnemonic.Pmovsxbq, Mnemonic.Pmovsxwd, Mnemonic.Pmovsxwq, Mnemonic.Pmovsxdq,
        Mnemonic.Pmovzxbw, Mnemonic.Pmovzxbd, Mnemonic.Pmovzxbq, Mnemonic.Pmovzxwd, Mnemonic.Pmovzxwq, Mnemonic.Pmovzxdq,
        Mnemonic.Pblendw, Mnemonic.Blendps, Mnemonic.Blendpd, Mnemonic.Mpsadbw, Mnemonic.Insertps, Mnemonic.Ptest, Mnemonic.Pblendvb,
        Mnemonic.Blendvps, Mnemonic.Blendvpd);

    private static readonly Code[] s_sseFloatCodes = CodesFor(NoMmx,
        Mnemonic.Addps, Mnemonic.Addpd, Mnemonic.Addss, Mnemonic.Addsd, Mnemonic.Subps, Mnemonic.Subpd, Mnemonic.Subss, Mnemonic.Subsd,
        Mnemonic.Mulps, Mnemonic.Mulpd, Mnemonic.Mulss, Mnemonic.Mulsd, Mnemonic.Divps, Mnemonic.Divpd, Mnemonic.Divss, Mnemonic.Divsd,
        Mnemonic.Minps, Mnemonic.Minpd, Mnemonic.Minss, Mnemonic.Minsd, Mnemonic.Maxps, Mnemonic.Maxpd, Mnemonic.Maxss, Mnemonic.Maxsd,
        Mnemonic.Sqrtps, Mnemonic.Sqrtpd, Mnemonic.Sqrtss, Mnemonic.Sqrtsd, Mnemonic.Cmpps, Mnemonic.Cmppd, Mnemonic.Cmpss, Mnemonic.Cmpsd,
        Mnemonic.Ucomiss, Mnemonic.Ucomisd, Mnemonic.Comiss, Mnemonic.Comisd);

    private static readonly Code[] s_sseConvertCodes = CodesFor(NoMmx,
        Mnemonic.Cvtsi2ss, Mnemonic.Cvtsi2sd, Mnemonic.Cvtss2si, Mnemonic.Cvttss2si, Mnemonic.Cvtsd2si, Mnemonic.Cvttsd2si,
        Mnemonic.Cvtss2sd, Mnemonic.Cvtsd2ss, Mnemonic.Cvtps2pd, Mnemonic.Cvtpd2ps, Mnemonic.Cvtdq2ps, Mnemonic.Cvtps2dq,
        Mnemonic.Cvttps2dq, Mnemonic.Cvtdq2pd, Mnemonic.Cvtpd2dq, Mnemonic.Cvttpd2dq, Mnemonic.Roundps, Mnemonic.Roundpd,
        Mnemonic.Roundss, Mnemonic.Roundsd, Mnemonic.Addsubps, Mnemonic.Addsubpd, Mnemonic.Haddps, Mnemonic.Haddpd, Mnemonic.Hsubps,
        Mnemonic.Hsubpd, Mnemonic.Dpps, Mnemonic.Dppd);

    private static readonly Code[] s_sse42Codes = CodesFor(NoMmx,
        Mnemonic.Pcmpestri, Mnemonic.Pcmpestri64, Mnemonic.Pcmpestrm, Mnemonic.Pcmpestrm64, Mnemonic.Pcmpistri, Mnemonic.Pcmpistrm,
        Mnemonic.Pcmpgtq, Mnemonic.Crc32);

    private static readonly Code[] s_bmiCodes = CodesFor(null,
        Mnemonic.Andn, Mnemonic.Bextr, Mnemonic.Blsi, Mnemonic.Blsmsk, Mnemonic.Blsr, Mnemonic.Bzhi, Mnemonic.Mulx, Mnemonic.Pdep,
        Mnemonic.Pext, Mnemonic.Rorx, Mnemonic.Sarx, Mnemonic.Shlx, Mnemonic.Shrx, Mnemonic.Adcx, Mnemonic.Adox, Mnemonic.Tzcnt,
        Mnemonic.Lzcnt, Mnemonic.Popcnt);

    private static readonly Code[] s_x87Codes = CodesFor(c => c.Mnemonic() is not (Mnemonic.F2xm1 or Mnemonic.Fyl2x or Mnemonic.Fyl2xp1
            or Mnemonic.Fptan or Mnemonic.Fpatan or Mnemonic.Fsin or Mnemonic.Fcos or Mnemonic.Fsincos),
        Mnemonic.Fld, Mnemonic.Fild, Mnemonic.Fbld, Mnemonic.Fld1, Mnemonic.Fldl2t, Mnemonic.Fldl2e, Mnemonic.Fldpi, Mnemonic.Fldlg2,
        Mnemonic.Fldln2, Mnemonic.Fldz, Mnemonic.Fst, Mnemonic.Fstp, Mnemonic.Fist, Mnemonic.Fistp, Mnemonic.Fisttp, Mnemonic.Fbstp,
        Mnemonic.Fadd, Mnemonic.Faddp, Mnemonic.Fiadd, Mnemonic.Fmul, Mnemonic.Fmulp, Mnemonic.Fimul, Mnemonic.Fsub, Mnemonic.Fsubp,
        Mnemonic.Fisub, Mnemonic.Fsubr, Mnemonic.Fsubrp, Mnemonic.Fisubr, Mnemonic.Fdiv, Mnemonic.Fdivp, Mnemonic.Fidiv, Mnemonic.Fdivr,
        Mnemonic.Fdivrp, Mnemonic.Fidivr, Mnemonic.Fcom, Mnemonic.Fcomp, Mnemonic.Fcompp, Mnemonic.Ficom, Mnemonic.Ficomp, Mnemonic.Fucom,
        Mnemonic.Fucomp, Mnemonic.Fucompp, Mnemonic.Fcomi, Mnemonic.Fcomip, Mnemonic.Fucomi, Mnemonic.Fucomip, Mnemonic.Ftst, Mnemonic.Fxch,
        Mnemonic.Fcmovb, Mnemonic.Fcmove, Mnemonic.Fcmovbe, Mnemonic.Fcmovu, Mnemonic.Fcmovnb, Mnemonic.Fcmovne, Mnemonic.Fcmovnbe,
        Mnemonic.Fcmovnu, Mnemonic.Ffree, Mnemonic.Fincstp, Mnemonic.Fdecstp, Mnemonic.Fnop, Mnemonic.Fchs, Mnemonic.Fabs, Mnemonic.Fsqrt,
        Mnemonic.Frndint, Mnemonic.Fxam, Mnemonic.Fscale, Mnemonic.Fxtract, Mnemonic.Fprem, Mnemonic.Fprem1);

    private static readonly Code[] s_x87ControlCodes = CodesFor(null,
        Mnemonic.Fninit, Mnemonic.Fnclex, Mnemonic.Fldcw, Mnemonic.Fnstcw, Mnemonic.Fnstsw, Mnemonic.Fnstenv, Mnemonic.Fldenv,
        Mnemonic.Fnsave, Mnemonic.Frstor, Mnemonic.Wait, Mnemonic.Fld, Mnemonic.Fadd, Mnemonic.Fstp);

    private static readonly Code[] s_mmxCodes = CodesFor(c => !NoMmx(c) || c == Code.Emms,
        Mnemonic.Paddb, Mnemonic.Paddw, Mnemonic.Paddd, Mnemonic.Paddq, Mnemonic.Psubb, Mnemonic.Psubw, Mnemonic.Psubd, Mnemonic.Psubq,
        Mnemonic.Paddsb, Mnemonic.Paddsw, Mnemonic.Paddusb, Mnemonic.Paddusw, Mnemonic.Psubsb, Mnemonic.Psubsw, Mnemonic.Psubusb,
        Mnemonic.Psubusw, Mnemonic.Pmullw, Mnemonic.Pmulhw, Mnemonic.Pmulhuw, Mnemonic.Pmuludq, Mnemonic.Pmaddwd, Mnemonic.Pavgb,
        Mnemonic.Pavgw, Mnemonic.Pminub, Mnemonic.Pmaxub, Mnemonic.Pminsw, Mnemonic.Pmaxsw, Mnemonic.Psadbw, Mnemonic.Pcmpeqb,
        Mnemonic.Pcmpeqw, Mnemonic.Pcmpeqd, Mnemonic.Pcmpgtb, Mnemonic.Pcmpgtw, Mnemonic.Pcmpgtd, Mnemonic.Pand, Mnemonic.Pandn,
        Mnemonic.Por, Mnemonic.Pxor, Mnemonic.Punpcklbw, Mnemonic.Punpcklwd, Mnemonic.Punpckldq, Mnemonic.Punpckhbw,
        Mnemonic.Punpckhwd, Mnemonic.Punpckhdq, Mnemonic.Packsswb, Mnemonic.Packssdw, Mnemonic.Packuswb, Mnemonic.Psllw,
        Mnemonic.Pslld, Mnemonic.Psllq, Mnemonic.Psrlw, Mnemonic.Psrld, Mnemonic.Psrlq, Mnemonic.Psraw, Mnemonic.Psrad,
        Mnemonic.Pabsb, Mnemonic.Pabsw, Mnemonic.Pabsd, Mnemonic.Pmaddubsw, Mnemonic.Pmulhrsw, Mnemonic.Psignb, Mnemonic.Psignw,
        Mnemonic.Psignd, Mnemonic.Phaddw, Mnemonic.Phaddd, Mnemonic.Phaddsw, Mnemonic.Phsubw, Mnemonic.Phsubd, Mnemonic.Phsubsw,
        Mnemonic.Pshufb, Mnemonic.Palignr, Mnemonic.Pshufw, Mnemonic.Pmovmskb, Mnemonic.Pextrw, Mnemonic.Pinsrw, Mnemonic.Movd,
        Mnemonic.Movq, Mnemonic.Movntq, Mnemonic.Movq2dq, Mnemonic.Movdq2q, Mnemonic.Cvtpi2ps, Mnemonic.Cvtpi2pd, Mnemonic.Cvtps2pi,
        Mnemonic.Cvttps2pi, Mnemonic.Cvtpd2pi, Mnemonic.Cvttpd2pi, Mnemonic.Emms);

    private static Dictionary<string, Family> BuildFamilies()
    {
        var families = new Dictionary<string, Family>();
        void Add(Family f) => families.Add(f.Name, f);

        Add(new Family { Name = "alu", Codes = s_aluCodes, Build = g => Sequence(g, s_aluCodes, 1, 5) });
        Add(new Family { Name = "move", Codes = s_moveCodes, Build = g => Sequence(g, s_moveCodes, 1, 5, s_aluCodes) });
        Add(new Family { Name = "muldiv", Codes = s_mulDivCodes, Build = BuildMulDiv });
        Add(new Family { Name = "shift", Codes = s_shiftCodes, Build = BuildShift });
        Add(new Family { Name = "bits", Codes = s_bitCodes, Build = BuildBits });
        Add(new Family { Name = "atomic", Codes = s_atomicCodes, Build = g => Sequence(g, s_atomicCodes, 1, 4, s_aluCodes) });
        Add(new Family { Name = "stack", Codes = s_stackCodes, Build = BuildStack });
        Add(new Family { Name = "branch", Build = BuildBranches });
        Add(new Family { Name = "string", AllowPointerWrites = true, Build = BuildStrings });
        Add(new Family { Name = "flags", Codes = s_flagCodes, Build = g => Sequence(g, s_flagCodes, 1, 5, s_aluCodes) });
        Add(new Family { Name = "faults", Build = BuildFaults });
        Add(new Family { Name = "bytes", Build = BuildRandomBytes });
        Add(new Family { Name = "sse-int", Codes = s_sseIntegerCodes, Build = g => Sequence(g, s_sseIntegerCodes, 1, 5, s_sseMoveCodes) });
        Add(new Family { Name = "sse-move", Codes = s_sseMoveCodes, Build = BuildSseMoves });
        Add(new Family { Name = "ssse3", Codes = s_ssse3Codes, Build = g => Sequence(g, s_ssse3Codes, 1, 4, s_sseIntegerCodes) });
        Add(new Family { Name = "sse-fp", Codes = s_sseFloatCodes, Build = g => FloatCase(g, s_sseFloatCodes) });
        Add(new Family { Name = "sse-cvt", Codes = s_sseConvertCodes, Build = g => FloatCase(g, s_sseConvertCodes) });
        Add(new Family { Name = "sse42", Codes = s_sse42Codes, Build = BuildSse42 });
        Add(new Family { Name = "bmi", Codes = s_bmiCodes, Build = BuildBmi });
        Add(new Family { Name = "x87", Codes = s_x87Codes, Build = g => X87Case(g, s_x87Codes) });
        Add(new Family { Name = "x87-control", Codes = s_x87ControlCodes, Build = g => X87Case(g, s_x87ControlCodes) });
        Add(new Family { Name = "sse41-int", Codes = s_sse41IntegerCodes, Build = g => Sequence(g, s_sse41IntegerCodes, 1, 4, s_sseIntegerCodes) });
        Add(new Family { Name = "mmx", Codes = s_mmxCodes, Build = BuildMmx });
        Add(new Family { Name = "xsave", Build = BuildXsave });
        return families;
    }

    /// <summary>MMX cases: random x87 register contents (the MMX registers alias their significands) and tags.</summary>
    private static void BuildMmx(CaseBuilder g)
    {
        CaseRandom r = g.Random;
        int top = r.Chance(0.5) ? 0 : r.Below(8);
        BitConverter.TryWriteBytes(g.Case.Fx.AsSpan(2), (ushort)(top << 11));
        g.Case.Fx[4] = r.Chance(0.5) ? (byte)0xFF : (byte)r.Next();
        for (int i = 0; i < 8; i++)
        {
            BitConverter.TryWriteBytes(g.Case.Fx.AsSpan(32 + (16 * i)), r.Value());
            BitConverter.TryWriteBytes(g.Case.Fx.AsSpan(40 + (16 * i)), r.Chance(0.5) ? (ushort)0xFFFF : (ushort)r.Next());
        }

        int n = 1 + r.Below(5);
        for (int i = 0; i < n; i++)
        {
            g.AddRandom(r.Chance(0.1) ? s_x87ControlCodes : r.Chance(0.1) ? s_sseIntegerCodes : s_mmxCodes);
        }
    }

    /// <summary>
    /// XSAVE/XRSTOR of the x87 and SSE components: EAX selects a subset of them (the host's XCR0 has more
    /// components, so the mask stays within x87|SSE), the area is usually 64-byte aligned and XRSTOR finds a
    /// plausible image (valid header, sometimes a reserved MXCSR bit or a non-zero reserved header field).
    /// </summary>
    private static void BuildXsave(CaseBuilder g)
    {
        CaseRandom r = g.Random;

        // Sometimes RBP (a stack-segment operand) or a non-canonical, possibly misaligned, address:
        // which of #SS/#GP(canonical) and #GP(alignment) comes first.
        Register p = r.Chance(0.1) ? Register.RBP : g.Pointers[0];
        int offset = 0x100 + (64 * r.Below((DiffCase.DataSize - 0x100 - 0x280) / 64));
        ulong address = DiffCase.DataBase + (ulong)offset + (r.Chance(0.05) ? (ulong)(8 * (1 + r.Below(7))) : 0);
        if (r.Chance(0.03))
        {
            address ^= 0x8000_0000_0000_0000UL | (r.Chance(0.5) ? 8UL : 0);
        }

        g.SetRegister(p, address);
        g.SetRegister(Register.RAX, (r.Value() & 0xFFFF_FFFF_0000_0000UL) | (uint)r.Below(4));

        byte[] image = new byte[576];
        int fcw = (0x37F & ~(r.Chance(0.2) ? 1 << r.Below(6) : 0) & ~0xF00) | (r.Below(16) << 8);
        BitConverter.TryWriteBytes(image.AsSpan(0), (ushort)fcw);
        // FSW: condition codes and TOP, sometimes exception flags and an ES/B that disagree with them.
        BitConverter.TryWriteBytes(image.AsSpan(2), (ushort)(r.Next() & (r.Chance(0.2) ? 0xFFFFu : 0x3F00u)));
        image[4] = (byte)r.Next();
        BitConverter.TryWriteBytes(image.AsSpan(6), (ushort)(r.Next() & 0x7FF));
        BitConverter.TryWriteBytes(image.AsSpan(8), r.Value());
        BitConverter.TryWriteBytes(image.AsSpan(16), r.Value());
        uint mxcsr = 0x1F80 | (uint)(r.Next() & 0x7F) | (uint)(r.Below(4) << 13);
        BitConverter.TryWriteBytes(image.AsSpan(24), r.Chance(0.05) ? mxcsr | (1u << (16 + r.Below(16))) : mxcsr);
        for (int i = 0; i < 8; i++)
        {
            (ulong significand, ushort signExponent) = ExtendedValues.Next(r);
            BitConverter.TryWriteBytes(image.AsSpan(32 + (16 * i)), significand);
            BitConverter.TryWriteBytes(image.AsSpan(40 + (16 * i)), signExponent);
        }

        for (int i = 0; i < 32; i++)
        {
            BitConverter.TryWriteBytes(image.AsSpan(160 + (8 * i)), r.Value());
        }

        BitConverter.TryWriteBytes(image.AsSpan(512), (ulong)r.Below(4));
        if (r.Chance(0.05))
        {
            // A reserved header byte (XCOMP_BV without bit 63 counts too): #GP.
            image[520 + r.Below(44)] = (byte)(1 + r.Below(0x7F));
        }

        g.Patch(offset, image);

        Code[] xsaves = [Code.Xsave_mem, Code.Xsave64_mem];
        Code[] xrstors = [Code.Xrstor_mem, Code.Xrstor64_mem];
        int n = 1 + r.Below(3);
        for (int i = 0; i < n; i++)
        {
            switch (r.Below(5))
            {
                case 0:
                case 1:
                    g.Add(Instruction.Create(xsaves[r.Below(2)], new MemoryOperand(p)));
                    break;
                case 2:
                case 3:
                    g.Add(Instruction.Create(xrstors[r.Below(2)], new MemoryOperand(p)));
                    break;
                default:
                    g.AddRandom(r.Chance(0.5) ? s_x87Codes : s_sseIntegerCodes);
                    break;
            }
        }
    }

    /// <summary>count instructions from <paramref name="codes"/>, mixed with a few from <paramref name="mix"/>.</summary>
    private static void Sequence(CaseBuilder g, Code[] codes, int min, int max, Code[]? mix = null)
    {
        int n = min + g.Random.Below(max - min + 1);
        for (int i = 0; i < n; i++)
        {
            g.AddRandom(mix is not null && g.Random.Chance(0.2) ? mix : codes);
        }
    }

    private static void BuildMulDiv(CaseBuilder g)
    {
        // Dividends that usually fit the quotient: rDX zero, small or the sign of rAX.
        int mode = g.Random.Below(4);
        ulong rax = g.GetRegister(Register.RAX);
        g.SetRegister(Register.RDX, mode switch
        {
            0 => 0,
            1 => (ulong)g.Random.Below(4),
            2 => (long)rax < 0 ? ulong.MaxValue : 0,
            _ => g.Random.Value(),
        });
        Sequence(g, s_mulDivCodes, 1, 3);
    }

    private static void BuildShift(CaseBuilder g)
    {
        g.SetRegister(Register.RCX, g.Random.Chance(0.8) ? (ulong)g.Random.Below(70) : g.Random.Value());
        Sequence(g, s_shiftCodes, 1, 4);
    }

    private static void BuildBits(CaseBuilder g)
    {
        // Bit offsets for BT* with memory operands stay within a few hundred bits either side.
        foreach (Register r in new[] { Register.RAX, Register.RCX, Register.RDX })
        {
            if (g.Random.Chance(0.6))
            {
                g.SetRegister(r, (ulong)(long)(g.Random.Below(1024) - 512));
            }
        }

        Sequence(g, s_bitCodes, 1, 4);
    }

    private static void BuildStack(CaseBuilder g)
    {
        g.SetRegister(Register.RBP, g.PointerValue());
        int n = 1 + g.Random.Below(5);
        for (int i = 0; i < n; i++)
        {
            if (g.Random.Chance(0.15))
            {
                // POPF of a known, harmless value (no TF/AC).
                ulong value = (g.Random.Next() & (RflagsBits.Arithmetic | RflagsBits.Direction)) | 0x202;
                g.Add(Instruction.Create(Code.Mov_r64_imm64, Register.R11, value));
                g.Add(Instruction.Create(Code.Push_r64, Register.R11));
                g.Add(Instruction.Create(Code.Popfq));
                continue;
            }

            if (g.Random.Chance(0.15))
            {
                // CALL forward to a RET-terminated routine skipped by a JMP.
                g.AddBranch(Code.Call_rel32_64, g.Count + 2);
                g.AddBranch(Code.Jmp_rel8_64, g.Count + 3);
                g.AddRandom(s_aluCodes);
                g.Add(g.Random.Chance(0.8) ? Instruction.Create(Code.Retnq) : Instruction.Create(Code.Retnq_imm16, (uint)(g.Random.Below(4) * 8)));
                continue;
            }

            g.AddRandom(s_stackCodes.Where(c => c is not (Code.Enterw_imm16_imm8 or Code.Enterq_imm16_imm8) || g.Random.Chance(0.3)).ToArray());
        }
    }

    private static void BuildSseMoves(CaseBuilder g)
    {
        // LDMXCSR/FXRSTOR need valid images: put a plausible MXCSR in memory for them.
        for (int i = 0; i < 8; i++)
        {
            int offset = 0x100 + (i * 0x400);
            g.Patch(offset, BitConverter.GetBytes(0x1F80u | (uint)(g.Random.Next() & 0x3F)));
        }

        Sequence(g, s_sseMoveCodes, 1, 5, s_sseIntegerCodes);
    }

    /// <summary>Floating-point cases: float-shaped register and memory contents, and varied MXCSR settings.</summary>
    private static void FloatCase(CaseBuilder g, Code[] codes)
    {
        CaseRandom r = g.Random;
        for (int i = 0; i < 16; i++)
        {
            bool doubles = r.Chance(0.5);
            for (int lane = 0; lane < 2; lane++)
            {
                ulong value = doubles ? FloatValues.Double(r) : FloatValues.Single(r) | ((ulong)FloatValues.Single(r) << 32);
                BitConverter.TryWriteBytes(g.Case.Fx.AsSpan(160 + (16 * i) + (8 * lane)), value);
            }
        }

        foreach (Register p in g.Pointers)
        {
            int offset = (int)((g.GetRegister(p) - DiffCase.DataBase) & ~15UL) - 0x80;
            byte[] bytes = new byte[0x100];
            bool doubles = r.Chance(0.5);
            for (int i = 0; i < bytes.Length; i += 8)
            {
                ulong value = doubles ? FloatValues.Double(r) : FloatValues.Single(r) | ((ulong)FloatValues.Single(r) << 32);
                BitConverter.TryWriteBytes(bytes.AsSpan(i), value);
            }

            if (offset >= 0 && offset + bytes.Length <= DiffCase.DataSize)
            {
                g.Patch(offset, bytes);
            }
        }

        uint mxcsr = 0x1F80;
        if (r.Chance(0.5))
        {
            mxcsr = (uint)((r.Below(4) << 13) | (r.Chance(0.3) ? 0x8000 : 0) | (r.Chance(0.3) ? 0x40 : 0) | 0x1F80);
            if (r.Chance(0.25))
            {
                mxcsr &= ~(uint)(0x80 << r.Below(6));
            }
        }

        mxcsr |= r.Chance(0.3) ? (uint)(r.Next() & 0x3F) : 0u;
        BitConverter.TryWriteBytes(g.Case.Fx.AsSpan(24), mxcsr);
        Sequence(g, codes, 1, 4);
    }

    private static void BuildSse42(CaseBuilder g)
    {
        CaseRandom r = g.Random;

        // Short strings: explicit lengths in rAX/rDX, NUL bytes for implicit lengths.
        g.SetRegister(Register.RAX, (ulong)(long)(r.Below(41) - 20));
        g.SetRegister(Register.RDX, (ulong)(long)(r.Below(41) - 20));
        for (int i = 0; i < 16; i++)
        {
            byte[] text = new byte[16];
            for (int k = 0; k < 16; k++)
            {
                text[k] = r.Chance(0.1) ? (byte)0 : (byte)('a' + r.Below(6));
            }

            if (r.Chance(0.5))
            {
                text.CopyTo(g.Case.Fx, 160 + (16 * i));
            }
        }

        Sequence(g, s_sse42Codes, 1, 3);
    }

    private static void BuildBmi(CaseBuilder g)
    {
        // BEXTR/BZHI control values with small start/length fields.
        foreach (Register reg in new[] { Register.RAX, Register.RCX, Register.RDX })
        {
            if (g.Random.Chance(0.5))
            {
                g.SetRegister(reg, (ulong)(g.Random.Below(80) | (g.Random.Below(80) << 8)));
            }
        }

        Sequence(g, s_bmiCodes, 1, 4, s_aluCodes);
    }

    /// <summary>x87 cases: a random stack (TOP, tags, extended values), control word and float-shaped memory.</summary>
    private static void X87Case(CaseBuilder g, Code[] codes)
    {
        CaseRandom r = g.Random;
        int top = r.Below(8);
        byte valid = (byte)r.Next();
        if (r.Chance(0.3))
        {
            valid = 0xFF;
        }

        // FCW: random rounding and precision, exceptions mostly masked.
        ushort fcw = (ushort)(0x37F & ~0x0F00);
        fcw |= (ushort)(r.Below(4) << 10);
        fcw |= (ushort)((r.Chance(0.6) ? 3 : r.Below(4)) << 8);
        if (r.Chance(0.15))
        {
            fcw &= (ushort)~(1 << r.Below(6));
        }

        ushort fsw = (ushort)((top << 11) | (r.Chance(0.3) ? (ushort)(r.Next() & 0x473F) : 0));
        if ((fsw & ~fcw & 0x3F) != 0)
        {
            fsw |= 0x8080; // a pending unmasked exception is consistent only with ES/B set
        }

        BitConverter.TryWriteBytes(g.Case.Fx.AsSpan(0), fcw);
        BitConverter.TryWriteBytes(g.Case.Fx.AsSpan(2), fsw);
        g.Case.Fx[4] = valid;
        for (int i = 0; i < 8; i++)
        {
            (ulong significand, ushort signExponent) = ExtendedValues.Next(r);
            BitConverter.TryWriteBytes(g.Case.Fx.AsSpan(32 + (16 * i)), significand);
            BitConverter.TryWriteBytes(g.Case.Fx.AsSpan(40 + (16 * i)), signExponent);
        }

        foreach (Register p in g.Pointers)
        {
            int offset = (int)((g.GetRegister(p) - DiffCase.DataBase) & ~15UL) - 0x80;
            byte[] bytes = new byte[0x100];
            for (int i = 0; i < bytes.Length; i += 16)
            {
                switch (r.Below(4))
                {
                    case 0:
                        BitConverter.TryWriteBytes(bytes.AsSpan(i), FloatValues.Double(r));
                        BitConverter.TryWriteBytes(bytes.AsSpan(i + 8), FloatValues.Double(r));
                        break;
                    case 1:
                        for (int k = 0; k < 16; k += 4)
                        {
                            BitConverter.TryWriteBytes(bytes.AsSpan(i + k), FloatValues.Single(r));
                        }

                        break;
                    case 2:
                        (ulong s, ushort e) = ExtendedValues.Next(r);
                        BitConverter.TryWriteBytes(bytes.AsSpan(i), s);
                        BitConverter.TryWriteBytes(bytes.AsSpan(i + 8), e);
                        break;
                    default:
                        BitConverter.TryWriteBytes(bytes.AsSpan(i), (long)(r.Below(2001) - 1000));
                        BitConverter.TryWriteBytes(bytes.AsSpan(i + 8), r.Value());
                        break;
                }
            }

            if (offset >= 0 && offset + bytes.Length <= DiffCase.DataSize)
            {
                g.Patch(offset, bytes);
            }
        }

        Sequence(g, codes, 1, 5);
    }

    private static void BuildBranches(CaseBuilder g)
    {
        g.SetRegister(Register.RCX, g.Random.Chance(0.5) ? (ulong)g.Random.Below(3) : g.Random.Value());
        int n = 3 + g.Random.Below(6);
        Code[] loops = [Code.Loop_rel8_64_RCX, Code.Loope_rel8_64_RCX, Code.Loopne_rel8_64_RCX, Code.Jrcxz_rel8_64,
                        Code.Loop_rel8_64_ECX, Code.Jecxz_rel8_64];
        for (int i = 0; i < n; i++)
        {
            int target = g.Count + 1 + g.Random.Below(4);
            switch (g.Random.Below(6))
            {
                case 0:
                case 1:
                    g.AddRandom(s_aluCodes);
                    break;
                case 2:
                    g.AddBranch(g.Random.Pick(s_jccCodes), target);
                    break;
                case 3:
                    g.AddBranch(g.Random.Chance(0.5) ? Code.Jmp_rel8_64 : Code.Jmp_rel32_64, target);
                    break;
                case 4:
                    g.AddBranch(g.Random.Pick(loops), target);
                    break;
                default:
                    g.AddRandom(s_moveCodes);
                    break;
            }
        }
    }

    private static void BuildStrings(CaseBuilder g)
    {
        CaseRandom r = g.Random;
        g.SetRegister(Register.RSI, g.PointerValue());
        g.SetRegister(Register.RDI, g.PointerValue());
        g.SetRegister(Register.RCX, r.Chance(0.8) ? (ulong)r.Below(40) : (ulong)r.Below(600));
        if (r.Chance(0.3))
        {
            // Sometimes let the operation run up to the window's end (a #PF part-way through).
            g.SetRegister(Register.RDI, DiffCase.DataBase + DiffCase.DataSize - (ulong)r.Below(64));
        }

        int n = 1 + r.Below(3);
        for (int i = 0; i < n; i++)
        {
            int addressSize = r.Chance(0.85) ? 64 : 32;
            Register segment = r.Chance(0.1) ? Register.GS : Register.None;
            RepPrefixKind rep = r.Below(3) switch { 0 => RepPrefixKind.None, 1 => RepPrefixKind.Repe, _ => RepPrefixKind.Repne };
            if (segment == Register.GS)
            {
                g.SetRegister(Register.RSI, (ulong)r.Below(0x1000));
            }

            Instruction ins = r.Below(5) switch
            {
                0 => r.Below(4) switch
                {
                    0 => Instruction.CreateMovsb(addressSize, segment, rep),
                    1 => Instruction.CreateMovsw(addressSize, segment, rep),
                    2 => Instruction.CreateMovsd(addressSize, segment, rep),
                    _ => Instruction.CreateMovsq(addressSize, segment, rep),
                },
                1 => r.Below(4) switch
                {
                    0 => Instruction.CreateStosb(addressSize, rep),
                    1 => Instruction.CreateStosw(addressSize, rep),
                    2 => Instruction.CreateStosd(addressSize, rep),
                    _ => Instruction.CreateStosq(addressSize, rep),
                },
                2 => r.Below(4) switch
                {
                    0 => Instruction.CreateLodsb(addressSize, segment, rep),
                    1 => Instruction.CreateLodsw(addressSize, segment, rep),
                    2 => Instruction.CreateLodsd(addressSize, segment, rep),
                    _ => Instruction.CreateLodsq(addressSize, segment, rep),
                },
                3 => r.Below(4) switch
                {
                    0 => Instruction.CreateCmpsb(addressSize, segment, rep),
                    1 => Instruction.CreateCmpsw(addressSize, segment, rep),
                    2 => Instruction.CreateCmpsd(addressSize, segment, rep),
                    _ => Instruction.CreateCmpsq(addressSize, segment, rep),
                },
                _ => r.Below(4) switch
                {
                    0 => Instruction.CreateScasb(addressSize, rep),
                    1 => Instruction.CreateScasw(addressSize, rep),
                    2 => Instruction.CreateScasd(addressSize, rep),
                    _ => Instruction.CreateScasq(addressSize, rep),
                },
            };
            if (r.Chance(0.2))
            {
                // Make compares find equal runs: copy the source over the destination's start.
                g.Patch((int)((g.GetRegister(Register.RDI) - DiffCase.DataBase) & 0x1FC0), new byte[64]);
            }

            if (r.Chance(0.3))
            {
                // Equal runs for REPE CMPS (sometimes with one differing element) and uniform runs for SCAS.
                ulong si = g.GetRegister(Register.RSI) - DiffCase.DataBase;
                ulong di = g.GetRegister(Register.RDI) - DiffCase.DataBase;
                int length = 1 + r.Below(r.Chance(0.5) ? 64 : 700);
                byte[] run = new byte[length];
                bool uniform = r.Chance(0.3);
                byte fill = (byte)g.GetRegister(Register.RAX);
                for (int k = 0; k < length; k++)
                {
                    run[k] = uniform ? fill : (byte)r.Next();
                }

                if (si + (ulong)length <= DiffCase.DataSize)
                {
                    g.Patch((int)si, run);
                }

                if (di + (ulong)length <= DiffCase.DataSize)
                {
                    byte[] copy = (byte[])run.Clone();
                    if (r.Chance(0.5))
                    {
                        copy[r.Below(length)] ^= (byte)(1 << r.Below(8));
                    }

                    g.Patch((int)di, copy);
                }
            }

            g.Add(ins);
        }
    }

    private static void BuildFaults(CaseBuilder g)
    {
        Code[] faulting = [Code.Ud2, Code.Hlt, Code.Cli, Code.Sti, Code.Int3, Code.In_AL_DX, Code.Out_DX_AL, Code.Int_imm8, Code.Rdtsc];
        g.AddRandom(s_aluCodes);
        Code code = g.Random.Pick(faulting);
        if (code == Code.Int_imm8)
        {
            byte vector = (byte)g.Random.Below(256);
            g.Add(Instruction.Create(code, vector == 0x80 ? 0x81u : vector));
        }
        else if (code.ToOpCode().OpCount > 0)
        {
            g.AddRandom([code]);
        }
        else if (code != Code.Rdtsc)
        {
            g.Add(Instruction.Create(code));
        }
    }

    private static readonly byte[] s_prefixes = [0x66, 0x67, 0xF0, 0xF2, 0xF3, 0x2E, 0x3E, 0x26, 0x36, 0x65, 0x40, 0x41, 0x44, 0x48, 0x49, 0x4C, 0x4D, 0x0F];

    /// <summary>Random byte strings, trimmed to whole instructions. Those that decode to instructions safe to run natively are compared; the rest only have to leave the emulator standing (a result or a guest exception).</summary>
    private static void BuildRandomBytes(CaseBuilder g)
    {
        CaseRandom r = g.Random;
        int length = 1 + r.Below(16);
        byte[] bytes = new byte[length];
        for (int i = 0; i < length; i++)
        {
            bytes[i] = r.Chance(0.25) ? s_prefixes[r.Below(s_prefixes.Length)] : (byte)r.Next();
        }

        // Keep whole instructions only (stopping at the first invalid one, which must fault).
        var decoder = Decoder.Create(64, new ByteArrayCodeReader(bytes), DiffCase.CodeBase);
        int end = 0;
        bool safe = true;
        var cpu = s_bindingCpu.Value!;
        var boundaries = new HashSet<ulong> { DiffCase.CodeBase };
        var targets = new List<ulong>();
        while (end < length)
        {
            Instruction ins = decoder.Decode();
            if (decoder.LastError == DecoderError.NoMoreBytes)
            {
                break;
            }

            end += ins.Length;
            boundaries.Add(DiffCase.CodeBase + (ulong)end);
            if (ins.IsInvalid)
            {
                break;
            }

            safe &= IsNativeSafe(in ins, cpu);
            if (ins.Op0Kind is OpKind.NearBranch16 or OpKind.NearBranch32 or OpKind.NearBranch64)
            {
                targets.Add(ins.NearBranchTarget);
            }
        }

        // A branch into the middle of an instruction runs bytes that were never checked.
        foreach (ulong target in targets)
        {
            if (target - DiffCase.CodeBase < DiffCase.CodePageSize && !boundaries.Contains(target))
            {
                safe = false;
            }
        }

        g.SetCode(bytes[..end], safe);
    }

    private static readonly ThreadLocal<X86Cpu> s_bindingCpu = new(() => new X86Cpu(new PhysicalMemory(new SharpVisor.Memory.GuestMemory())));

    /// <summary>Whether an instruction may run in the native harness: implemented by the emulator and unable to leave the sandbox.</summary>
    internal static bool IsNativeSafe(in Instruction ins, X86Cpu cpu)
    {
        if (!InstructionBinder.IsImplemented(in ins, cpu))
        {
            return false;
        }

        switch (ins.Mnemonic)
        {
            case Mnemonic.F2xm1:
            case Mnemonic.Fyl2x:
            case Mnemonic.Fyl2xp1:
            case Mnemonic.Fptan:
            case Mnemonic.Fpatan:
            case Mnemonic.Fsin:
            case Mnemonic.Fcos:
            case Mnemonic.Fsincos:
            case Mnemonic.Rcpps:
            case Mnemonic.Rcpss:
            case Mnemonic.Rsqrtps:
            case Mnemonic.Rsqrtss:
            case Mnemonic.Syscall:
            case Mnemonic.Sysenter:
            case Mnemonic.Rdtsc:
            case Mnemonic.Rdtscp:
            case Mnemonic.Rdrand:
            case Mnemonic.Rdseed:
            case Mnemonic.Cpuid:
            case Mnemonic.Int1:
            case Mnemonic.Popf:
            case Mnemonic.Popfd:
            case Mnemonic.Popfq:
            case Mnemonic.Iret:
            case Mnemonic.Iretd:
            case Mnemonic.Iretq:
            case Mnemonic.Retf:
            case Mnemonic.Lss:
            case Mnemonic.Lfs:
            case Mnemonic.Lgs:
            case Mnemonic.Wrfsbase:
            case Mnemonic.Wrgsbase:
            case Mnemonic.Wrpkru:
                return false;
            case Mnemonic.Int:
                return ins.Immediate8 != 0x80;
            case Mnemonic.Mov when ins.Op0Kind == OpKind.Register && ins.Op0Register.IsSegmentRegister():
            case Mnemonic.Pop when ins.Op0Kind == OpKind.Register && ins.Op0Register.IsSegmentRegister():
                return false;
            case Mnemonic.Jmp or Mnemonic.Call when ins.IsJmpFarIndirect || ins.IsCallFarIndirect || ins.IsJmpFar || ins.IsCallFar:
                return false;
        }

        // FS-relative memory would read the harness's thread block.
        return !(ins.SegmentPrefix == Register.FS && ins.OpCount > 0);
    }
}
