using Iced.Intel;

namespace SharpVisor.Emulator;

/// <summary>Binding of SSE, SSE2, SSE3, SSSE3 and SSE4.1/4.2 instructions (integer, move and FP forms).</summary>
internal unsafe partial struct InstructionBinder
{
    private bool? BindSse(in Instruction ins, ref Op op)
    {
        if (ins.Mnemonic is Mnemonic.Cvtpi2ps or Mnemonic.Cvtpi2pd)
        {
            return BindMmx(in ins, ref op);
        }

        for (int i = 0; i < ins.OpCount; i++)
        {
            if (ins.GetOpKind(i) == OpKind.Register && ins.GetOpRegister(i).IsMM())
            {
                return BindMmx(in ins, ref op);
            }
        }

        switch (ins.Mnemonic)
        {
            case Mnemonic.Paddb: return V(in ins, ref op, &VectorHandlers.Binary<PaddbOp>);
            case Mnemonic.Paddw: return V(in ins, ref op, &VectorHandlers.Binary<PaddwOp>);
            case Mnemonic.Paddd: return V(in ins, ref op, &VectorHandlers.Binary<PadddOp>);
            case Mnemonic.Paddq: return V(in ins, ref op, &VectorHandlers.Binary<PaddqOp>);
            case Mnemonic.Psubb: return V(in ins, ref op, &VectorHandlers.Binary<PsubbOp>);
            case Mnemonic.Psubw: return V(in ins, ref op, &VectorHandlers.Binary<PsubwOp>);
            case Mnemonic.Psubd: return V(in ins, ref op, &VectorHandlers.Binary<PsubdOp>);
            case Mnemonic.Psubq: return V(in ins, ref op, &VectorHandlers.Binary<PsubqOp>);
            case Mnemonic.Paddsb: return V(in ins, ref op, &VectorHandlers.Binary<PaddsbOp>);
            case Mnemonic.Paddsw: return V(in ins, ref op, &VectorHandlers.Binary<PaddswOp>);
            case Mnemonic.Paddusb: return V(in ins, ref op, &VectorHandlers.Binary<PaddusbOp>);
            case Mnemonic.Paddusw: return V(in ins, ref op, &VectorHandlers.Binary<PadduswOp>);
            case Mnemonic.Psubsb: return V(in ins, ref op, &VectorHandlers.Binary<PsubsbOp>);
            case Mnemonic.Psubsw: return V(in ins, ref op, &VectorHandlers.Binary<PsubswOp>);
            case Mnemonic.Psubusb: return V(in ins, ref op, &VectorHandlers.Binary<PsubusbOp>);
            case Mnemonic.Psubusw: return V(in ins, ref op, &VectorHandlers.Binary<PsubuswOp>);
            case Mnemonic.Pmullw: return V(in ins, ref op, &VectorHandlers.Binary<PmullwOp>);
            case Mnemonic.Pmulhw: return V(in ins, ref op, &VectorHandlers.Binary<PmulhwOp>);
            case Mnemonic.Pmulhuw: return V(in ins, ref op, &VectorHandlers.Binary<PmulhuwOp>);
            case Mnemonic.Pmuludq: return V(in ins, ref op, &VectorHandlers.Binary<PmuludqOp>);
            case Mnemonic.Pmaddwd: return V(in ins, ref op, &VectorHandlers.Binary<PmaddwdOp>);
            case Mnemonic.Pavgb: return V(in ins, ref op, &VectorHandlers.Binary<PavgbOp>);
            case Mnemonic.Pavgw: return V(in ins, ref op, &VectorHandlers.Binary<PavgwOp>);
            case Mnemonic.Pminub: return V(in ins, ref op, &VectorHandlers.Binary<PminubOp>);
            case Mnemonic.Pmaxub: return V(in ins, ref op, &VectorHandlers.Binary<PmaxubOp>);
            case Mnemonic.Pminsw: return V(in ins, ref op, &VectorHandlers.Binary<PminswOp>);
            case Mnemonic.Pmaxsw: return V(in ins, ref op, &VectorHandlers.Binary<PmaxswOp>);
            case Mnemonic.Psadbw: return V(in ins, ref op, &VectorHandlers.Binary<PsadbwOp>);
            case Mnemonic.Pcmpeqb: return V(in ins, ref op, &VectorHandlers.Binary<PcmpeqbOp>);
            case Mnemonic.Pcmpeqw: return V(in ins, ref op, &VectorHandlers.Binary<PcmpeqwOp>);
            case Mnemonic.Pcmpeqd: return V(in ins, ref op, &VectorHandlers.Binary<PcmpeqdOp>);
            case Mnemonic.Pcmpgtb: return V(in ins, ref op, &VectorHandlers.Binary<PcmpgtbOp>);
            case Mnemonic.Pcmpgtw: return V(in ins, ref op, &VectorHandlers.Binary<PcmpgtwOp>);
            case Mnemonic.Pcmpgtd: return V(in ins, ref op, &VectorHandlers.Binary<PcmpgtdOp>);
            case Mnemonic.Pand:
            case Mnemonic.Andps:
            case Mnemonic.Andpd:
                return V(in ins, ref op, &VectorHandlers.Binary<PandOp>);
            case Mnemonic.Pandn:
            case Mnemonic.Andnps:
            case Mnemonic.Andnpd:
                return V(in ins, ref op, &VectorHandlers.Binary<PandnOp>);
            case Mnemonic.Por:
            case Mnemonic.Orps:
            case Mnemonic.Orpd:
                return V(in ins, ref op, &VectorHandlers.Binary<PorOp>);
            case Mnemonic.Pxor:
            case Mnemonic.Xorps:
            case Mnemonic.Xorpd:
                return V(in ins, ref op, &VectorHandlers.Binary<PxorOp>);
            case Mnemonic.Punpcklbw: return V(in ins, ref op, &VectorHandlers.Binary<PunpcklbwOp>);
            case Mnemonic.Punpcklwd: return V(in ins, ref op, &VectorHandlers.Binary<PunpcklwdOp>);
            case Mnemonic.Punpckldq:
            case Mnemonic.Unpcklps:
                return V(in ins, ref op, &VectorHandlers.Binary<PunpckldqOp>);
            case Mnemonic.Punpcklqdq:
            case Mnemonic.Unpcklpd:
                return V(in ins, ref op, &VectorHandlers.Binary<PunpcklqdqOp>);
            case Mnemonic.Punpckhbw: return V(in ins, ref op, &VectorHandlers.Binary<PunpckhbwOp>);
            case Mnemonic.Punpckhwd: return V(in ins, ref op, &VectorHandlers.Binary<PunpckhwdOp>);
            case Mnemonic.Punpckhdq:
            case Mnemonic.Unpckhps:
                return V(in ins, ref op, &VectorHandlers.Binary<PunpckhdqOp>);
            case Mnemonic.Punpckhqdq:
            case Mnemonic.Unpckhpd:
                return V(in ins, ref op, &VectorHandlers.Binary<PunpckhqdqOp>);
            case Mnemonic.Packsswb: return V(in ins, ref op, &VectorHandlers.Binary<PacksswbOp>);
            case Mnemonic.Packssdw: return V(in ins, ref op, &VectorHandlers.Binary<PackssdwOp>);
            case Mnemonic.Packuswb: return V(in ins, ref op, &VectorHandlers.Binary<PackuswbOp>);
            case Mnemonic.Psllw: return Shift(in ins, ref op, &VectorHandlers.Binary<PsllwOp>, &VectorHandlers.Binary<PsllwImmOp>);
            case Mnemonic.Pslld: return Shift(in ins, ref op, &VectorHandlers.Binary<PslldOp>, &VectorHandlers.Binary<PslldImmOp>);
            case Mnemonic.Psllq: return Shift(in ins, ref op, &VectorHandlers.Binary<PsllqOp>, &VectorHandlers.Binary<PsllqImmOp>);
            case Mnemonic.Psrlw: return Shift(in ins, ref op, &VectorHandlers.Binary<PsrlwOp>, &VectorHandlers.Binary<PsrlwImmOp>);
            case Mnemonic.Psrld: return Shift(in ins, ref op, &VectorHandlers.Binary<PsrldOp>, &VectorHandlers.Binary<PsrldImmOp>);
            case Mnemonic.Psrlq: return Shift(in ins, ref op, &VectorHandlers.Binary<PsrlqOp>, &VectorHandlers.Binary<PsrlqImmOp>);
            case Mnemonic.Psraw: return Shift(in ins, ref op, &VectorHandlers.Binary<PsrawOp>, &VectorHandlers.Binary<PsrawImmOp>);
            case Mnemonic.Psrad: return Shift(in ins, ref op, &VectorHandlers.Binary<PsradOp>, &VectorHandlers.Binary<PsradImmOp>);
            case Mnemonic.Pslldq: return Shift(in ins, ref op, null, &VectorHandlers.Binary<PslldqImmOp>);
            case Mnemonic.Psrldq: return Shift(in ins, ref op, null, &VectorHandlers.Binary<PsrldqImmOp>);
            case Mnemonic.Pshufd: return V(in ins, ref op, &VectorHandlers.Binary<PshufdOp>);
            case Mnemonic.Pshuflw: return V(in ins, ref op, &VectorHandlers.Binary<PshuflwOp>);
            case Mnemonic.Pshufhw: return V(in ins, ref op, &VectorHandlers.Binary<PshufhwOp>);
            case Mnemonic.Shufps: return V(in ins, ref op, &VectorHandlers.Binary<ShufpsOp>);
            case Mnemonic.Shufpd: return V(in ins, ref op, &VectorHandlers.Binary<ShufpdOp>);

            case Mnemonic.Movdqa:
            case Mnemonic.Movdqu:
            case Mnemonic.Movaps:
            case Mnemonic.Movups:
            case Mnemonic.Movapd:
            case Mnemonic.Movupd:
            case Mnemonic.Lddqu:
            case Mnemonic.Movntdqa:
            case Mnemonic.Movntdq:
            case Mnemonic.Movntps:
            case Mnemonic.Movntpd:
                return ins.Op0Kind == OpKind.Register
                    ? V(in ins, ref op, &VectorHandlers.Binary<MoveOp>)
                    : VStore(in ins, ref op, &VectorHandlers.StoreToRm<MoveOp>);
            case Mnemonic.Movss when ins.Op0Kind == OpKind.Register && ins.Op1Kind == OpKind.Register:
                return V(in ins, ref op, &VectorHandlers.Binary<MoveLow32Op>);
            case Mnemonic.Movsd when ins.Op0Kind == OpKind.Register && ins.Op1Kind == OpKind.Register:
                return V(in ins, ref op, &VectorHandlers.Binary<MoveLow64Op>);
            case Mnemonic.Movss:
            case Mnemonic.Movsd:
                return ins.Op0Kind == OpKind.Register
                    ? V(in ins, ref op, &VectorHandlers.Binary<MoveOp>)
                    : VStore(in ins, ref op, &VectorHandlers.StoreToRm<MoveOp>);
            case Mnemonic.Movlps:
            case Mnemonic.Movlpd:
                return ins.Op0Kind == OpKind.Register
                    ? V(in ins, ref op, &VectorHandlers.Binary<MoveLow64Op>)
                    : VStore(in ins, ref op, &VectorHandlers.StoreToRm<MoveOp>);
            case Mnemonic.Movhps:
            case Mnemonic.Movhpd:
                return ins.Op0Kind == OpKind.Register
                    ? V(in ins, ref op, &VectorHandlers.Binary<MoveHigh64Op>)
                    : VStore(in ins, ref op, &VectorHandlers.StoreHigh64);
            case Mnemonic.Movhlps: return V(in ins, ref op, &VectorHandlers.Binary<MovhlpsOp>);
            case Mnemonic.Movlhps: return V(in ins, ref op, &VectorHandlers.Binary<MovlhpsOp>);
            case Mnemonic.Movddup: return V(in ins, ref op, &VectorHandlers.Binary<MovddupOp>);
            case Mnemonic.Movshdup: return V(in ins, ref op, &VectorHandlers.Binary<MovshdupOp>);
            case Mnemonic.Movsldup: return V(in ins, ref op, &VectorHandlers.Binary<MovsldupOp>);
            case Mnemonic.Movd:
            case Mnemonic.Movq:
                return BindMovdq(in ins, ref op);
            case Mnemonic.Pmovmskb:
            case Mnemonic.Movmskps:
            case Mnemonic.Movmskpd:
                CheckSseReg(in ins);
                op.Reg = Gpr(ins.Op0Register);
                op.Rm = XmmIndex(ins.Op1Register);
                op.Aux = (ushort)(ins.Mnemonic == Mnemonic.Movmskps ? 4 : ins.Mnemonic == Mnemonic.Movmskpd ? 8 : 1);
                op.Handler = &VectorHandlers.MoveMask;
                return false;
            case Mnemonic.Pextrb: return BindExtract(in ins, ref op, 1);
            case Mnemonic.Pextrw: return BindExtract(in ins, ref op, 2);
            case Mnemonic.Pextrd:
            case Mnemonic.Extractps:
                return BindExtract(in ins, ref op, 4);
            case Mnemonic.Pextrq: return BindExtract(in ins, ref op, 8);
            case Mnemonic.Pinsrb: return BindInsert(in ins, ref op, 1);
            case Mnemonic.Pinsrw: return BindInsert(in ins, ref op, 2);
            case Mnemonic.Pinsrd: return BindInsert(in ins, ref op, 4);
            case Mnemonic.Pinsrq: return BindInsert(in ins, ref op, 8);
            case Mnemonic.Maskmovdqu:
            {
                int n = 0;
                for (int i = 0; i < ins.OpCount; i++)
                {
                    if (ins.GetOpKind(i) == OpKind.Register)
                    {
                        if (n++ == 0)
                        {
                            op.Reg = XmmIndex(ins.GetOpRegister(i));
                        }
                        else
                        {
                            op.Rm = XmmIndex(ins.GetOpRegister(i));
                        }
                    }
                }

                BindStringSource(in ins, ref op);
                op.Handler = &VectorHandlers.MaskMove;
                return false;
            }

            case Mnemonic.Emms:
                op.Handler = &MmxHandlers.Emms;
                return false;
            case Mnemonic.Ldmxcsr:
                BindMemory(in ins, ref op);
                op.Handler = &VectorHandlers.Ldmxcsr;
                return false;
            case Mnemonic.Stmxcsr:
                BindMemory(in ins, ref op);
                op.Handler = &VectorHandlers.Stmxcsr;
                return false;
            case Mnemonic.Fxsave:
            case Mnemonic.Fxsave64:
                BindMemory(in ins, ref op);
                op.Aux = (ushort)(ins.Mnemonic == Mnemonic.Fxsave64 ? 1 : 0);
                op.Handler = &FxHandlers.Fxsave;
                return false;
            case Mnemonic.Fxrstor:
            case Mnemonic.Fxrstor64:
                BindMemory(in ins, ref op);
                op.Aux = (ushort)(ins.Mnemonic == Mnemonic.Fxrstor64 ? 1 : 0);
                op.Handler = &FxHandlers.Fxrstor;
                return false;
            case Mnemonic.Xsave:
            case Mnemonic.Xsave64:
                BindMemory(in ins, ref op);
                op.Aux = (ushort)(ins.Mnemonic == Mnemonic.Xsave64 ? 1 : 0);
                op.Handler = &FxHandlers.Xsave;
                return false;
            case Mnemonic.Xrstor:
            case Mnemonic.Xrstor64:
                BindMemory(in ins, ref op);
                op.Aux = (ushort)(ins.Mnemonic == Mnemonic.Xrstor64 ? 1 : 0);
                op.Handler = &FxHandlers.Xrstor;
                return false;

            // SSSE3
            case Mnemonic.Pshufb: return V(in ins, ref op, &VectorHandlers.Binary<PshufbOp>);
            case Mnemonic.Pabsb: return V(in ins, ref op, &VectorHandlers.Binary<PabsbOp>);
            case Mnemonic.Pabsw: return V(in ins, ref op, &VectorHandlers.Binary<PabswOp>);
            case Mnemonic.Pabsd: return V(in ins, ref op, &VectorHandlers.Binary<PabsdOp>);
            case Mnemonic.Phaddw: return V(in ins, ref op, &VectorHandlers.Binary<PhaddwOp>);
            case Mnemonic.Phaddd: return V(in ins, ref op, &VectorHandlers.Binary<PhadddOp>);
            case Mnemonic.Phaddsw: return V(in ins, ref op, &VectorHandlers.Binary<PhaddswOp>);
            case Mnemonic.Phsubw: return V(in ins, ref op, &VectorHandlers.Binary<PhsubwOp>);
            case Mnemonic.Phsubd: return V(in ins, ref op, &VectorHandlers.Binary<PhsubdOp>);
            case Mnemonic.Phsubsw: return V(in ins, ref op, &VectorHandlers.Binary<PhsubswOp>);
            case Mnemonic.Pmaddubsw: return V(in ins, ref op, &VectorHandlers.Binary<PmaddubswOp>);
            case Mnemonic.Pmulhrsw: return V(in ins, ref op, &VectorHandlers.Binary<PmulhrswOp>);
            case Mnemonic.Psignb: return V(in ins, ref op, &VectorHandlers.Binary<PsignbOp>);
            case Mnemonic.Psignw: return V(in ins, ref op, &VectorHandlers.Binary<PsignwOp>);
            case Mnemonic.Psignd: return V(in ins, ref op, &VectorHandlers.Binary<PsigndOp>);
            case Mnemonic.Palignr: return V(in ins, ref op, &VectorHandlers.Binary<PalignrOp>);

            // SSE4.1 / SSE4.2 integer
            case Mnemonic.Packusdw: return V(in ins, ref op, &VectorHandlers.Binary<PackusdwOp>);
            case Mnemonic.Pcmpeqq: return V(in ins, ref op, &VectorHandlers.Binary<PcmpeqqOp>);
            case Mnemonic.Pcmpgtq: return V(in ins, ref op, &VectorHandlers.Binary<PcmpgtqOp>);
            case Mnemonic.Pmaxsb: return V(in ins, ref op, &VectorHandlers.Binary<PmaxsbOp>);
            case Mnemonic.Pmaxsd: return V(in ins, ref op, &VectorHandlers.Binary<PmaxsdOp>);
            case Mnemonic.Pmaxud: return V(in ins, ref op, &VectorHandlers.Binary<PmaxudOp>);
            case Mnemonic.Pmaxuw: return V(in ins, ref op, &VectorHandlers.Binary<PmaxuwOp>);
            case Mnemonic.Pminsb: return V(in ins, ref op, &VectorHandlers.Binary<PminsbOp>);
            case Mnemonic.Pminsd: return V(in ins, ref op, &VectorHandlers.Binary<PminsdOp>);
            case Mnemonic.Pminud: return V(in ins, ref op, &VectorHandlers.Binary<PminudOp>);
            case Mnemonic.Pminuw: return V(in ins, ref op, &VectorHandlers.Binary<PminuwOp>);
            case Mnemonic.Pmuldq: return V(in ins, ref op, &VectorHandlers.Binary<PmuldqOp>);
            case Mnemonic.Pmulld: return V(in ins, ref op, &VectorHandlers.Binary<PmulldOp>);
            case Mnemonic.Phminposuw: return V(in ins, ref op, &VectorHandlers.Binary<PhminposuwOp>);
            case Mnemonic.Pmovsxbw: return V(in ins, ref op, &VectorHandlers.Binary<PmovsxbwOp>);
            case Mnemonic.Pmovsxbd: return V(in ins, ref op, &VectorHandlers.Binary<PmovsxbdOp>);
            case Mnemonic.Pmovsxbq: return V(in ins, ref op, &VectorHandlers.Binary<PmovsxbqOp>);
            case Mnemonic.Pmovsxwd: return V(in ins, ref op, &VectorHandlers.Binary<PmovsxwdOp>);
            case Mnemonic.Pmovsxwq: return V(in ins, ref op, &VectorHandlers.Binary<PmovsxwqOp>);
            case Mnemonic.Pmovsxdq: return V(in ins, ref op, &VectorHandlers.Binary<PmovsxdqOp>);
            case Mnemonic.Pmovzxbw: return V(in ins, ref op, &VectorHandlers.Binary<PmovzxbwOp>);
            case Mnemonic.Pmovzxbd: return V(in ins, ref op, &VectorHandlers.Binary<PmovzxbdOp>);
            case Mnemonic.Pmovzxbq: return V(in ins, ref op, &VectorHandlers.Binary<PmovzxbqOp>);
            case Mnemonic.Pmovzxwd: return V(in ins, ref op, &VectorHandlers.Binary<PmovzxwdOp>);
            case Mnemonic.Pmovzxwq: return V(in ins, ref op, &VectorHandlers.Binary<PmovzxwqOp>);
            case Mnemonic.Pmovzxdq: return V(in ins, ref op, &VectorHandlers.Binary<PmovzxdqOp>);
            case Mnemonic.Pblendw: return V(in ins, ref op, &VectorHandlers.Binary<PblendwOp>);
            case Mnemonic.Blendps: return V(in ins, ref op, &VectorHandlers.Binary<BlendpsOp>);
            case Mnemonic.Blendpd: return V(in ins, ref op, &VectorHandlers.Binary<BlendpdOp>);
            case Mnemonic.Mpsadbw: return V(in ins, ref op, &VectorHandlers.Binary<MpsadbwOp>);
            case Mnemonic.Insertps:
            {
                bool? r = V(in ins, ref op, &VectorHandlers.Binary<InsertpsOp>);
                if ((op.Flags & OpFlags.Memory) != 0)
                {
                    op.Imm &= 0x3F; // the memory form takes its single dword from lane 0
                }

                return r;
            }

            case Mnemonic.Ptest: return V(in ins, ref op, &VectorHandlers.Ptest);
            case Mnemonic.Pblendvb:
                op.Aux = 1;
                return V(in ins, ref op, &VectorHandlers.BlendVariable);
            case Mnemonic.Blendvps:
                op.Aux = 4;
                return V(in ins, ref op, &VectorHandlers.BlendVariable);
            case Mnemonic.Blendvpd:
                op.Aux = 8;
                return V(in ins, ref op, &VectorHandlers.BlendVariable);
            default:
                return BindSseFloat(in ins, ref op);
        }
    }

    private static ushort XmmIndex(Register r) => (ushort)(r - Register.XMM0);

    private static void CheckSseReg(in Instruction ins)
    {
    }

    /// <summary>Memory operands the instruction may take unaligned although they are 16 bytes.</summary>
    private static bool AllowsUnaligned(Mnemonic m) =>
        m is Mnemonic.Movups or Mnemonic.Movupd or Mnemonic.Movdqu or Mnemonic.Lddqu
            or Mnemonic.Pcmpestri or Mnemonic.Pcmpestrm or Mnemonic.Pcmpistri or Mnemonic.Pcmpistrm
            or Mnemonic.Pcmpestri64 or Mnemonic.Pcmpestrm64;

    /// <summary>Form xmm, xmm/m[, imm8] (also blend forms with an implicit XMM0 third operand).</summary>
    private bool V(in Instruction ins, ref Op op, delegate*<X86Cpu, ref Op, void> handler)
    {
        op.Reg = (ushort)XmmIndex(ins.Op0Register);
        op.Rm = op.Reg;
        for (int i = 1; i < ins.OpCount; i++)
        {
            switch (ins.GetOpKind(i))
            {
                case OpKind.Register when i == 1:
                    op.Rm = (ushort)XmmIndex(ins.Op1Register);
                    break;
                case OpKind.Memory:
                    BindVectorMemory(in ins, ref op);
                    break;
                case OpKind.Immediate8:
                    op.Imm = ins.Immediate8;
                    break;
            }
        }

        op.Handler = handler;
        return false;
    }

    /// <summary>Store form xmm/m, xmm (Rm = destination, Reg = source).</summary>
    private bool VStore(in Instruction ins, ref Op op, delegate*<X86Cpu, ref Op, void> handler)
    {
        op.Reg = (ushort)XmmIndex(ins.Op1Register);
        if (ins.Op0Kind == OpKind.Memory)
        {
            BindVectorMemory(in ins, ref op);
        }
        else
        {
            op.Rm = (ushort)XmmIndex(ins.Op0Register);
        }

        op.Handler = handler;
        return false;
    }

    private void BindVectorMemory(in Instruction ins, ref Op op)
    {
        BindMemory(in ins, ref op);
        int size = ins.MemorySize.GetSize();
        op.OpSize = (byte)size;
        if (size == 16 && !AllowsUnaligned(ins.Mnemonic))
        {
            op.Flags |= OpFlags.Aligned;
            if (ins.Mnemonic is Mnemonic.Movaps or Mnemonic.Movapd or Mnemonic.Movdqa or Mnemonic.Movntps
                or Mnemonic.Movntpd or Mnemonic.Movntdq or Mnemonic.Movntdqa)
            {
                op.Flags |= OpFlags.ExplicitlyAligned;
            }
        }
    }

    /// <summary>Vector shifts: by an XMM/m128 count or by imm8 (op0 is then the r/m register).</summary>
    private bool Shift(in Instruction ins, ref Op op, delegate*<X86Cpu, ref Op, void> byVector, delegate*<X86Cpu, ref Op, void> byImmediate)
    {
        if (ins.Op1Kind == OpKind.Immediate8)
        {
            op.Reg = (ushort)XmmIndex(ins.Op0Register);
            op.Rm = op.Reg;
            op.Imm = ins.Immediate8;
            op.Handler = byImmediate;
            return false;
        }

        return V(in ins, ref op, byVector);
    }

    private bool? BindMovdq(in Instruction ins, ref Op op)
    {
        switch (ins.Code)
        {
            case Code.Movd_xmm_rm32:
            case Code.Movq_xmm_rm64:
                op.Reg = (ushort)XmmIndex(ins.Op0Register);
                op.OpSize = (byte)(ins.Code == Code.Movq_xmm_rm64 ? 8 : 4);
                BindRm(in ins, 1, ref op);
                op.Handler = &VectorHandlers.MoveFromGpr;
                return false;
            case Code.Movd_rm32_xmm:
            case Code.Movq_rm64_xmm:
                op.Reg = (ushort)XmmIndex(ins.Op1Register);
                op.OpSize = (byte)(ins.Code == Code.Movq_rm64_xmm ? 8 : 4);
                BindRm(in ins, 0, ref op);
                op.Handler = &VectorHandlers.MoveToGpr;
                return false;
            case Code.Movq_xmm_xmmm64:
                return V(in ins, ref op, &VectorHandlers.Binary<ZeroExtend64Op>);
            case Code.Movq_xmmm64_xmm:
                return VStore(in ins, ref op, &VectorHandlers.StoreToRm<ZeroExtend64Op>);
            default:
                return null;
        }
    }

    private bool BindExtract(in Instruction ins, ref Op op, int size)
    {
        // PEXTRW r32, xmm, imm8 (66 0F C5) has the GPR in ModRM.reg; every other form has the XMM there.
        bool legacyPextrw = ins.Code is Code.Pextrw_r32_xmm_imm8 or Code.Pextrw_r64_xmm_imm8;
        Register xmm = ins.Op1Register;
        op.Reg = (ushort)XmmIndex(xmm);
        if (ins.Op0Kind == OpKind.Register)
        {
            op.Rm = Gpr(ins.Op0Register);
        }
        else
        {
            BindMemory(in ins, ref op);
        }

        _ = legacyPextrw;
        op.Aux = (ushort)size;
        op.Imm = ins.Immediate8;
        op.Handler = &VectorHandlers.Extract;
        return false;
    }

    private bool BindInsert(in Instruction ins, ref Op op, int size)
    {
        op.Reg = (ushort)XmmIndex(ins.Op0Register);
        if (ins.Op1Kind == OpKind.Register)
        {
            op.Rm = Gpr(ins.Op1Register);
        }
        else
        {
            BindMemory(in ins, ref op);
        }

        op.Aux = (ushort)size;
        op.Imm = ins.Immediate8;
        op.Handler = &VectorHandlers.Insert;
        return false;
    }
}
