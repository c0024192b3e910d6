using Iced.Intel;

namespace SharpVisor.Emulator;

/// <summary>Binding of MMX instructions and the SSE/SSSE3 instructions' MMX-register forms.</summary>
internal unsafe partial struct InstructionBinder
{
    private bool? BindMmx(in Instruction ins, ref Op op)
    {
        switch (ins.Mnemonic)
        {
            case Mnemonic.Paddb: return M(in ins, ref op, &MmxHandlers.Binary<PaddbOp>);
            case Mnemonic.Paddw: return M(in ins, ref op, &MmxHandlers.Binary<PaddwOp>);
            case Mnemonic.Paddd: return M(in ins, ref op, &MmxHandlers.Binary<PadddOp>);
            case Mnemonic.Paddq: return M(in ins, ref op, &MmxHandlers.Binary<PaddqOp>);
            case Mnemonic.Psubb: return M(in ins, ref op, &MmxHandlers.Binary<PsubbOp>);
            case Mnemonic.Psubw: return M(in ins, ref op, &MmxHandlers.Binary<PsubwOp>);
            case Mnemonic.Psubd: return M(in ins, ref op, &MmxHandlers.Binary<PsubdOp>);
            case Mnemonic.Psubq: return M(in ins, ref op, &MmxHandlers.Binary<PsubqOp>);
            case Mnemonic.Paddsb: return M(in ins, ref op, &MmxHandlers.Binary<PaddsbOp>);
            case Mnemonic.Paddsw: return M(in ins, ref op, &MmxHandlers.Binary<PaddswOp>);
            case Mnemonic.Paddusb: return M(in ins, ref op, &MmxHandlers.Binary<PaddusbOp>);
            case Mnemonic.Paddusw: return M(in ins, ref op, &MmxHandlers.Binary<PadduswOp>);
            case Mnemonic.Psubsb: return M(in ins, ref op, &MmxHandlers.Binary<PsubsbOp>);
            case Mnemonic.Psubsw: return M(in ins, ref op, &MmxHandlers.Binary<PsubswOp>);
            case Mnemonic.Psubusb: return M(in ins, ref op, &MmxHandlers.Binary<PsubusbOp>);
            case Mnemonic.Psubusw: return M(in ins, ref op, &MmxHandlers.Binary<PsubuswOp>);
            case Mnemonic.Pmullw: return M(in ins, ref op, &MmxHandlers.Binary<PmullwOp>);
            case Mnemonic.Pmulhw: return M(in ins, ref op, &MmxHandlers.Binary<PmulhwOp>);
            case Mnemonic.Pmulhuw: return M(in ins, ref op, &MmxHandlers.Binary<PmulhuwOp>);
            case Mnemonic.Pmuludq: return M(in ins, ref op, &MmxHandlers.Binary<PmuludqOp>);
            case Mnemonic.Pmaddwd: return M(in ins, ref op, &MmxHandlers.Binary<PmaddwdOp>);
            case Mnemonic.Pavgb: return M(in ins, ref op, &MmxHandlers.Binary<PavgbOp>);
            case Mnemonic.Pavgw: return M(in ins, ref op, &MmxHandlers.Binary<PavgwOp>);
            case Mnemonic.Pminub: return M(in ins, ref op, &MmxHandlers.Binary<PminubOp>);
            case Mnemonic.Pmaxub: return M(in ins, ref op, &MmxHandlers.Binary<PmaxubOp>);
            case Mnemonic.Pminsw: return M(in ins, ref op, &MmxHandlers.Binary<PminswOp>);
            case Mnemonic.Pmaxsw: return M(in ins, ref op, &MmxHandlers.Binary<PmaxswOp>);
            case Mnemonic.Psadbw: return M(in ins, ref op, &MmxHandlers.Binary<PsadbwOp>);
            case Mnemonic.Pcmpeqb: return M(in ins, ref op, &MmxHandlers.Binary<PcmpeqbOp>);
            case Mnemonic.Pcmpeqw: return M(in ins, ref op, &MmxHandlers.Binary<PcmpeqwOp>);
            case Mnemonic.Pcmpeqd: return M(in ins, ref op, &MmxHandlers.Binary<PcmpeqdOp>);
            case Mnemonic.Pcmpgtb: return M(in ins, ref op, &MmxHandlers.Binary<PcmpgtbOp>);
            case Mnemonic.Pcmpgtw: return M(in ins, ref op, &MmxHandlers.Binary<PcmpgtwOp>);
            case Mnemonic.Pcmpgtd: return M(in ins, ref op, &MmxHandlers.Binary<PcmpgtdOp>);
            case Mnemonic.Pand: return M(in ins, ref op, &MmxHandlers.Binary<PandOp>);
            case Mnemonic.Pandn: return M(in ins, ref op, &MmxHandlers.Binary<PandnOp>);
            case Mnemonic.Por: return M(in ins, ref op, &MmxHandlers.Binary<PorOp>);
            case Mnemonic.Pxor: return M(in ins, ref op, &MmxHandlers.Binary<PxorOp>);
            case Mnemonic.Punpcklbw: return M(in ins, ref op, &MmxHandlers.Binary<PunpcklbwOp>);
            case Mnemonic.Punpcklwd: return M(in ins, ref op, &MmxHandlers.Binary<PunpcklwdOp>);
            case Mnemonic.Punpckldq: return M(in ins, ref op, &MmxHandlers.Binary<PunpckldqOp>);
            case Mnemonic.Pabsb: return M(in ins, ref op, &MmxHandlers.Binary<PabsbOp>);
            case Mnemonic.Pabsw: return M(in ins, ref op, &MmxHandlers.Binary<PabswOp>);
            case Mnemonic.Pabsd: return M(in ins, ref op, &MmxHandlers.Binary<PabsdOp>);
            case Mnemonic.Pmaddubsw: return M(in ins, ref op, &MmxHandlers.Binary<PmaddubswOp>);
            case Mnemonic.Pmulhrsw: return M(in ins, ref op, &MmxHandlers.Binary<PmulhrswOp>);
            case Mnemonic.Psignb: return M(in ins, ref op, &MmxHandlers.Binary<PsignbOp>);
            case Mnemonic.Psignw: return M(in ins, ref op, &MmxHandlers.Binary<PsignwOp>);
            case Mnemonic.Psignd: return M(in ins, ref op, &MmxHandlers.Binary<PsigndOp>);
            case Mnemonic.Punpckhbw: return M(in ins, ref op, &MmxHandlers.Binary<MmxPunpckhbwOp>);
            case Mnemonic.Punpckhwd: return M(in ins, ref op, &MmxHandlers.Binary<MmxPunpckhwdOp>);
            case Mnemonic.Punpckhdq: return M(in ins, ref op, &MmxHandlers.Binary<MmxPunpckhdqOp>);
            case Mnemonic.Packsswb: return M(in ins, ref op, &MmxHandlers.Binary<MmxPacksswbOp>);
            case Mnemonic.Packssdw: return M(in ins, ref op, &MmxHandlers.Binary<MmxPackssdwOp>);
            case Mnemonic.Packuswb: return M(in ins, ref op, &MmxHandlers.Binary<MmxPackuswbOp>);
            case Mnemonic.Phaddw: return M(in ins, ref op, &MmxHandlers.Binary<MmxPhaddwOp>);
            case Mnemonic.Phaddd: return M(in ins, ref op, &MmxHandlers.Binary<MmxPhadddOp>);
            case Mnemonic.Phaddsw: return M(in ins, ref op, &MmxHandlers.Binary<MmxPhaddswOp>);
            case Mnemonic.Phsubw: return M(in ins, ref op, &MmxHandlers.Binary<MmxPhsubwOp>);
            case Mnemonic.Phsubd: return M(in ins, ref op, &MmxHandlers.Binary<MmxPhsubdOp>);
            case Mnemonic.Phsubsw: return M(in ins, ref op, &MmxHandlers.Binary<MmxPhsubswOp>);
            case Mnemonic.Pshufb: return M(in ins, ref op, &MmxHandlers.Binary<MmxPshufbOp>);
            case Mnemonic.Palignr: return M(in ins, ref op, &MmxHandlers.Binary<MmxPalignrOp>);
            case Mnemonic.Pshufw: return M(in ins, ref op, &MmxHandlers.Binary<MmxPshufwOp>);
            case Mnemonic.Psllw: return ins.Op1Kind == OpKind.Immediate8 ? M(in ins, ref op, &MmxHandlers.Binary<PsllwImmOp>) : M(in ins, ref op, &MmxHandlers.Binary<PsllwOp>);
            case Mnemonic.Pslld: return ins.Op1Kind == OpKind.Immediate8 ? M(in ins, ref op, &MmxHandlers.Binary<PslldImmOp>) : M(in ins, ref op, &MmxHandlers.Binary<PslldOp>);
            case Mnemonic.Psllq: return ins.Op1Kind == OpKind.Immediate8 ? M(in ins, ref op, &MmxHandlers.Binary<PsllqImmOp>) : M(in ins, ref op, &MmxHandlers.Binary<PsllqOp>);
            case Mnemonic.Psrlw: return ins.Op1Kind == OpKind.Immediate8 ? M(in ins, ref op, &MmxHandlers.Binary<PsrlwImmOp>) : M(in ins, ref op, &MmxHandlers.Binary<PsrlwOp>);
            case Mnemonic.Psrld: return ins.Op1Kind == OpKind.Immediate8 ? M(in ins, ref op, &MmxHandlers.Binary<PsrldImmOp>) : M(in ins, ref op, &MmxHandlers.Binary<PsrldOp>);
            case Mnemonic.Psrlq: return ins.Op1Kind == OpKind.Immediate8 ? M(in ins, ref op, &MmxHandlers.Binary<PsrlqImmOp>) : M(in ins, ref op, &MmxHandlers.Binary<PsrlqOp>);
            case Mnemonic.Psraw: return ins.Op1Kind == OpKind.Immediate8 ? M(in ins, ref op, &MmxHandlers.Binary<PsrawImmOp>) : M(in ins, ref op, &MmxHandlers.Binary<PsrawOp>);
            case Mnemonic.Psrad: return ins.Op1Kind == OpKind.Immediate8 ? M(in ins, ref op, &MmxHandlers.Binary<PsradImmOp>) : M(in ins, ref op, &MmxHandlers.Binary<PsradOp>);
            case Mnemonic.Pmovmskb:
                op.Reg = Gpr(ins.Op0Register);
                op.Rm = MmIndex(ins.Op1Register);
                op.Handler = &MmxHandlers.MoveMask;
                return false;
            case Mnemonic.Pextrw:
                op.Reg = Gpr(ins.Op0Register);
                op.Rm = MmIndex(ins.Op1Register);
                op.Imm = ins.Immediate8;
                op.Handler = &MmxHandlers.ExtractWord;
                return false;
            case Mnemonic.Pinsrw:
                op.Reg = MmIndex(ins.Op0Register);
                if (ins.Op1Kind == OpKind.Register)
                {
                    op.Rm = Gpr(ins.Op1Register);
                }
                else
                {
                    BindMemory(in ins, ref op);
                }

                op.Imm = ins.Immediate8;
                op.Handler = &MmxHandlers.InsertWord;
                return false;
            case Mnemonic.Movd:
            case Mnemonic.Movq:
                switch (ins.Code)
                {
                    case Code.Movd_mm_rm32:
                    case Code.Movq_mm_rm64:
                        op.Reg = MmIndex(ins.Op0Register);
                        op.OpSize = (byte)(ins.Code == Code.Movq_mm_rm64 ? 8 : 4);
                        BindRm(in ins, 1, ref op);
                        op.Handler = &MmxHandlers.FromGpr;
                        return false;
                    case Code.Movd_rm32_mm:
                    case Code.Movq_rm64_mm:
                        op.Reg = MmIndex(ins.Op1Register);
                        op.OpSize = (byte)(ins.Code == Code.Movq_rm64_mm ? 8 : 4);
                        BindRm(in ins, 0, ref op);
                        op.Handler = &MmxHandlers.ToGpr;
                        return false;
                    case Code.Movq_mm_mmm64:
                        return M(in ins, ref op, &MmxHandlers.Binary<MoveOp>);
                    case Code.Movq_mmm64_mm:
                        return MStore(in ins, ref op);
                    default:
                        return null;
                }

            case Mnemonic.Movntq:
                return MStore(in ins, ref op);
            case Mnemonic.Maskmovq:
            {
                int n = 0;
                for (int i = 0; i < ins.OpCount; i++)
                {
                    if (ins.GetOpKind(i) == OpKind.Register)
                    {
                        if (n++ == 0)
                        {
                            op.Reg = MmIndex(ins.GetOpRegister(i));
                        }
                        else
                        {
                            op.Rm = MmIndex(ins.GetOpRegister(i));
                        }
                    }
                }

                BindStringSource(in ins, ref op);
                op.Handler = &MmxHandlers.MaskMove;
                return false;
            }

            case Mnemonic.Movq2dq:
                op.Reg = XmmIndex(ins.Op0Register);
                op.Rm = MmIndex(ins.Op1Register);
                op.Handler = &MmxHandlers.ToXmm;
                return false;
            case Mnemonic.Movdq2q:
                op.Reg = MmIndex(ins.Op0Register);
                op.Rm = XmmIndex(ins.Op1Register);
                op.Handler = &MmxHandlers.FromXmm;
                return false;
            case Mnemonic.Cvtpi2ps:
            case Mnemonic.Cvtpi2pd:
                op.Reg = XmmIndex(ins.Op0Register);
                if (ins.Op1Kind == OpKind.Register)
                {
                    op.Rm = MmIndex(ins.Op1Register);
                }
                else
                {
                    BindMemory(in ins, ref op);
                }

                op.Aux = (ushort)(ins.Mnemonic == Mnemonic.Cvtpi2pd ? 1 : 0);
                op.Handler = &MmxHandlers.IntegersToFloats;
                return false;
            case Mnemonic.Cvtps2pi:
            case Mnemonic.Cvttps2pi:
            case Mnemonic.Cvtpd2pi:
            case Mnemonic.Cvttpd2pi:
                op.Reg = MmIndex(ins.Op0Register);
                if (ins.Op1Kind == OpKind.Register)
                {
                    op.Rm = XmmIndex(ins.Op1Register);
                }
                else
                {
                    BindVectorMemory(in ins, ref op);
                }

                op.Aux = (ushort)((ins.Mnemonic is Mnemonic.Cvtpd2pi or Mnemonic.Cvttpd2pi ? 1 : 0) | (ins.Mnemonic is Mnemonic.Cvttps2pi or Mnemonic.Cvttpd2pi ? 2 : 0));
                op.Handler = &MmxHandlers.FloatsToIntegers;
                return false;
            default:
                return null;
        }
    }

    private static ushort MmIndex(Register r) => (ushort)(r - Register.MM0);

    /// <summary>Form mm, mm/m64[, imm8].</summary>
    private bool M(in Instruction ins, ref Op op, delegate*<X86Cpu, ref Op, void> handler)
    {
        op.Reg = MmIndex(ins.Op0Register);
        op.Rm = op.Reg;
        for (int i = 1; i < ins.OpCount; i++)
        {
            switch (ins.GetOpKind(i))
            {
                case OpKind.Register:
                    op.Rm = MmIndex(ins.GetOpRegister(i));
                    break;
                case OpKind.Memory:
                    BindMemory(in ins, ref op);
                    break;
                case OpKind.Immediate8:
                    op.Imm = ins.Immediate8;
                    break;
            }
        }

        op.Handler = handler;
        return false;
    }

    /// <summary>MOVQ/MOVNTQ mm/m64, mm.</summary>
    private bool MStore(in Instruction ins, ref Op op)
    {
        op.Reg = MmIndex(ins.Op1Register);
        if (ins.Op0Kind == OpKind.Memory)
        {
            BindMemory(in ins, ref op);
        }
        else
        {
            op.Rm = MmIndex(ins.Op0Register);
        }

        op.Handler = &MmxHandlers.StoreQ;
        return false;
    }
}
