using Iced.Intel;

namespace SharpVisor.Emulator;

/// <summary>Binding of SSE floating-point arithmetic, compares, conversions and rounding.</summary>
internal unsafe partial struct InstructionBinder
{
    private bool? BindSseFloat(in Instruction ins, ref Op op)
    {
        switch (ins.Mnemonic)
        {
            case Mnemonic.Addps: return Fp(in ins, ref op, SseFloat.OpAdd, &SseFloatHandlers.PackedSingle);
            case Mnemonic.Addpd: return Fp(in ins, ref op, SseFloat.OpAdd, &SseFloatHandlers.PackedDouble);
            case Mnemonic.Addss: return Fp(in ins, ref op, SseFloat.OpAdd, &SseFloatHandlers.ScalarSingle);
            case Mnemonic.Addsd: return Fp(in ins, ref op, SseFloat.OpAdd, &SseFloatHandlers.ScalarDouble);
            case Mnemonic.Subps: return Fp(in ins, ref op, SseFloat.OpSub, &SseFloatHandlers.PackedSingle);
            case Mnemonic.Subpd: return Fp(in ins, ref op, SseFloat.OpSub, &SseFloatHandlers.PackedDouble);
            case Mnemonic.Subss: return Fp(in ins, ref op, SseFloat.OpSub, &SseFloatHandlers.ScalarSingle);
            case Mnemonic.Subsd: return Fp(in ins, ref op, SseFloat.OpSub, &SseFloatHandlers.ScalarDouble);
            case Mnemonic.Mulps: return Fp(in ins, ref op, SseFloat.OpMul, &SseFloatHandlers.PackedSingle);
            case Mnemonic.Mulpd: return Fp(in ins, ref op, SseFloat.OpMul, &SseFloatHandlers.PackedDouble);
            case Mnemonic.Mulss: return Fp(in ins, ref op, SseFloat.OpMul, &SseFloatHandlers.ScalarSingle);
            case Mnemonic.Mulsd: return Fp(in ins, ref op, SseFloat.OpMul, &SseFloatHandlers.ScalarDouble);
            case Mnemonic.Divps: return Fp(in ins, ref op, SseFloat.OpDiv, &SseFloatHandlers.PackedSingle);
            case Mnemonic.Divpd: return Fp(in ins, ref op, SseFloat.OpDiv, &SseFloatHandlers.PackedDouble);
            case Mnemonic.Divss: return Fp(in ins, ref op, SseFloat.OpDiv, &SseFloatHandlers.ScalarSingle);
            case Mnemonic.Divsd: return Fp(in ins, ref op, SseFloat.OpDiv, &SseFloatHandlers.ScalarDouble);
            case Mnemonic.Minps: return Fp(in ins, ref op, SseFloat.OpMin, &SseFloatHandlers.PackedSingle);
            case Mnemonic.Minpd: return Fp(in ins, ref op, SseFloat.OpMin, &SseFloatHandlers.PackedDouble);
            case Mnemonic.Minss: return Fp(in ins, ref op, SseFloat.OpMin, &SseFloatHandlers.ScalarSingle);
            case Mnemonic.Minsd: return Fp(in ins, ref op, SseFloat.OpMin, &SseFloatHandlers.ScalarDouble);
            case Mnemonic.Maxps: return Fp(in ins, ref op, SseFloat.OpMax, &SseFloatHandlers.PackedSingle);
            case Mnemonic.Maxpd: return Fp(in ins, ref op, SseFloat.OpMax, &SseFloatHandlers.PackedDouble);
            case Mnemonic.Maxss: return Fp(in ins, ref op, SseFloat.OpMax, &SseFloatHandlers.ScalarSingle);
            case Mnemonic.Maxsd: return Fp(in ins, ref op, SseFloat.OpMax, &SseFloatHandlers.ScalarDouble);
            case Mnemonic.Sqrtps: return Fp(in ins, ref op, SseFloat.OpSqrt, &SseFloatHandlers.PackedSingle);
            case Mnemonic.Sqrtpd: return Fp(in ins, ref op, SseFloat.OpSqrt, &SseFloatHandlers.PackedDouble);
            case Mnemonic.Sqrtss: return Fp(in ins, ref op, SseFloat.OpSqrt, &SseFloatHandlers.ScalarSingle);
            case Mnemonic.Sqrtsd: return Fp(in ins, ref op, SseFloat.OpSqrt, &SseFloatHandlers.ScalarDouble);
            case Mnemonic.Cmpps: return Fp(in ins, ref op, 0, &SseFloatHandlers.Compare);
            case Mnemonic.Cmppd: return Fp(in ins, ref op, 1, &SseFloatHandlers.Compare);
            case Mnemonic.Cmpss: return Fp(in ins, ref op, 2, &SseFloatHandlers.Compare);
            case Mnemonic.Cmpsd when ins.Code != Code.Cmpsd_m32_m32: return Fp(in ins, ref op, 3, &SseFloatHandlers.Compare);
            case Mnemonic.Ucomiss: return Fp(in ins, ref op, 0, &SseFloatHandlers.CompareToFlags);
            case Mnemonic.Ucomisd: return Fp(in ins, ref op, 1, &SseFloatHandlers.CompareToFlags);
            case Mnemonic.Comiss: return Fp(in ins, ref op, 2, &SseFloatHandlers.CompareToFlags);
            case Mnemonic.Comisd: return Fp(in ins, ref op, 3, &SseFloatHandlers.CompareToFlags);
            case Mnemonic.Cvtsi2ss:
            case Mnemonic.Cvtsi2sd:
                op.Reg = XmmIndex(ins.Op0Register);
                op.OpSize = (byte)(ins.Op1Kind == OpKind.Register ? RegisterSize(ins.Op1Register) : ins.MemorySize.GetSize());
                BindRm(in ins, 1, ref op);
                op.Aux = (ushort)(ins.Mnemonic == Mnemonic.Cvtsi2sd ? 1 : 0);
                op.Handler = &SseFloatHandlers.IntegerToScalar;
                return false;
            case Mnemonic.Cvtss2si:
            case Mnemonic.Cvttss2si:
            case Mnemonic.Cvtsd2si:
            case Mnemonic.Cvttsd2si:
            {
                op.Reg = Gpr(ins.Op0Register);
                if (ins.Op1Kind == OpKind.Register)
                {
                    op.Rm = XmmIndex(ins.Op1Register);
                }
                else
                {
                    BindVectorMemory(in ins, ref op);
                }

                op.Aux = (ushort)((ins.Mnemonic is Mnemonic.Cvtsd2si or Mnemonic.Cvttsd2si ? 1 : 0)
                    | (ins.Mnemonic is Mnemonic.Cvttss2si or Mnemonic.Cvttsd2si ? 2 : 0)
                    | (RegisterSize(ins.Op0Register) == 8 ? 4 : 0));
                op.Handler = &SseFloatHandlers.ScalarToInteger;
                return false;
            }

            case Mnemonic.Cvtss2sd: return Fp(in ins, ref op, 0, &SseFloatHandlers.ConvertScalar);
            case Mnemonic.Cvtsd2ss: return Fp(in ins, ref op, 1, &SseFloatHandlers.ConvertScalar);
            case Mnemonic.Cvtps2pd: return Fp(in ins, ref op, SseFloatHandlers.CvtPs2Pd, &SseFloatHandlers.ConvertPacked);
            case Mnemonic.Cvtpd2ps: return Fp(in ins, ref op, SseFloatHandlers.CvtPd2Ps, &SseFloatHandlers.ConvertPacked);
            case Mnemonic.Cvtdq2ps: return Fp(in ins, ref op, SseFloatHandlers.CvtDq2Ps, &SseFloatHandlers.ConvertPacked);
            case Mnemonic.Cvtps2dq: return Fp(in ins, ref op, SseFloatHandlers.CvtPs2Dq, &SseFloatHandlers.ConvertPacked);
            case Mnemonic.Cvttps2dq: return Fp(in ins, ref op, SseFloatHandlers.CvttPs2Dq, &SseFloatHandlers.ConvertPacked);
            case Mnemonic.Cvtdq2pd: return Fp(in ins, ref op, SseFloatHandlers.CvtDq2Pd, &SseFloatHandlers.ConvertPacked);
            case Mnemonic.Cvtpd2dq: return Fp(in ins, ref op, SseFloatHandlers.CvtPd2Dq, &SseFloatHandlers.ConvertPacked);
            case Mnemonic.Cvttpd2dq: return Fp(in ins, ref op, SseFloatHandlers.CvttPd2Dq, &SseFloatHandlers.ConvertPacked);
            case Mnemonic.Roundps: return Fp(in ins, ref op, 0, &SseFloatHandlers.Round);
            case Mnemonic.Roundpd: return Fp(in ins, ref op, 1, &SseFloatHandlers.Round);
            case Mnemonic.Roundss: return Fp(in ins, ref op, 2, &SseFloatHandlers.Round);
            case Mnemonic.Roundsd: return Fp(in ins, ref op, 3, &SseFloatHandlers.Round);
            case Mnemonic.Addsubps: return Fp(in ins, ref op, 0, &SseFloatHandlers.Horizontal);
            case Mnemonic.Addsubpd: return Fp(in ins, ref op, 1, &SseFloatHandlers.Horizontal);
            case Mnemonic.Haddps: return Fp(in ins, ref op, 2, &SseFloatHandlers.Horizontal);
            case Mnemonic.Haddpd: return Fp(in ins, ref op, 3, &SseFloatHandlers.Horizontal);
            case Mnemonic.Hsubps: return Fp(in ins, ref op, 4, &SseFloatHandlers.Horizontal);
            case Mnemonic.Hsubpd: return Fp(in ins, ref op, 5, &SseFloatHandlers.Horizontal);
            case Mnemonic.Dpps: return Fp(in ins, ref op, 0, &SseFloatHandlers.DotProduct);
            case Mnemonic.Dppd: return Fp(in ins, ref op, 1, &SseFloatHandlers.DotProduct);
            case Mnemonic.Rcpps: return Fp(in ins, ref op, 0, &SseFloatHandlers.Approximate);
            case Mnemonic.Rsqrtps: return Fp(in ins, ref op, 1, &SseFloatHandlers.Approximate);
            case Mnemonic.Rcpss: return Fp(in ins, ref op, 2, &SseFloatHandlers.Approximate);
            case Mnemonic.Rsqrtss: return Fp(in ins, ref op, 3, &SseFloatHandlers.Approximate);
            default:
                return BindSse42(in ins, ref op);
        }
    }

    private bool Fp(in Instruction ins, ref Op op, int aux, delegate*<X86Cpu, ref Op, void> handler)
    {
        op.Aux = (ushort)aux;
        return V(in ins, ref op, handler);
    }
}
