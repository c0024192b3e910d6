using Iced.Intel;

namespace SharpVisor.Emulator;

/// <summary>Binding of the general-purpose integer instructions.</summary>
internal unsafe partial struct InstructionBinder
{
    private static readonly nint[] s_add = AluHandlers.Table<AddOp>();
    private static readonly nint[] s_or = AluHandlers.Table<OrOp>();
    private static readonly nint[] s_adc = AluHandlers.Table<AdcOp>();
    private static readonly nint[] s_sbb = AluHandlers.Table<SbbOp>();
    private static readonly nint[] s_and = AluHandlers.Table<AndOp>();
    private static readonly nint[] s_sub = AluHandlers.Table<SubOp>();
    private static readonly nint[] s_xor = AluHandlers.Table<XorOp>();
    private static readonly nint[] s_cmp = AluHandlers.Table<CmpOp>();
    private static readonly nint[] s_test = AluHandlers.Table<TestOp>();

    private bool? BindInteger(in Instruction ins, ref Op op)
    {
        switch (ins.Mnemonic)
        {
            case Mnemonic.Add: return BindAlu(in ins, ref op, s_add);
            case Mnemonic.Or: return BindAlu(in ins, ref op, s_or);
            case Mnemonic.Adc: return BindAlu(in ins, ref op, s_adc);
            case Mnemonic.Sbb: return BindAlu(in ins, ref op, s_sbb);
            case Mnemonic.And: return BindAlu(in ins, ref op, s_and);
            case Mnemonic.Sub: return BindAlu(in ins, ref op, s_sub);
            case Mnemonic.Xor: return BindAlu(in ins, ref op, s_xor);
            case Mnemonic.Cmp: return BindAlu(in ins, ref op, s_cmp);
            case Mnemonic.Test: return BindAlu(in ins, ref op, s_test);
            case Mnemonic.Inc: return BindUnary(in ins, ref op, UnaryHandlers.Inc);
            case Mnemonic.Dec: return BindUnary(in ins, ref op, UnaryHandlers.Dec);
            case Mnemonic.Not: return BindUnary(in ins, ref op, UnaryHandlers.Not);
            case Mnemonic.Neg: return BindUnary(in ins, ref op, UnaryHandlers.Neg);
            case Mnemonic.Mov: return BindMov(in ins, ref op);
            case Mnemonic.Movzx: return BindExtend(in ins, ref op, signed: false);
            case Mnemonic.Movsx: return BindExtend(in ins, ref op, signed: true);
            case Mnemonic.Movsxd: return BindExtend(in ins, ref op, signed: true);
            case Mnemonic.Lea: return BindLea(in ins, ref op);
            case Mnemonic.Xchg: return BindXchg(in ins, ref op);
            case Mnemonic.Xadd: return BindXadd(in ins, ref op);
            case Mnemonic.Cmpxchg: return BindCmpxchg(in ins, ref op);
            case Mnemonic.Cmpxchg8b:
                BindMemory(in ins, ref op);
                op.Handler = &ExchangeHandlers.Cmpxchg8b;
                return false;
            case Mnemonic.Cmpxchg16b:
                BindMemory(in ins, ref op);
                op.Handler = &ExchangeHandlers.Cmpxchg16b;
                return false;
            case Mnemonic.Bswap:
                op.Reg = Gpr(ins.Op0Register);
                op.Handler = Sized(RegisterSize(ins.Op0Register), null, &MoveHandlers.Bswap16, &MoveHandlers.Bswap32, &MoveHandlers.Bswap64);
                return false;
            case Mnemonic.Movbe: return BindMovbe(in ins, ref op);
            case Mnemonic.Rol: return BindShift(in ins, ref op, ShiftSemantics.Rol);
            case Mnemonic.Ror: return BindShift(in ins, ref op, ShiftSemantics.Ror);
            case Mnemonic.Rcl: return BindShift(in ins, ref op, ShiftSemantics.Rcl);
            case Mnemonic.Rcr: return BindShift(in ins, ref op, ShiftSemantics.Rcr);
            case Mnemonic.Shl: return BindShift(in ins, ref op, ShiftSemantics.Shl);
            case Mnemonic.Sal: return BindShift(in ins, ref op, ShiftSemantics.Sal);
            case Mnemonic.Shr: return BindShift(in ins, ref op, ShiftSemantics.Shr);
            case Mnemonic.Sar: return BindShift(in ins, ref op, ShiftSemantics.Sar);
            case Mnemonic.Shld: return BindDoubleShift(in ins, ref op, left: true);
            case Mnemonic.Shrd: return BindDoubleShift(in ins, ref op, left: false);
            case Mnemonic.Mul: return BindMulDiv(in ins, ref op, 0);
            case Mnemonic.Div: return BindMulDiv(in ins, ref op, 2);
            case Mnemonic.Idiv: return BindMulDiv(in ins, ref op, 3);
            case Mnemonic.Imul: return BindImul(in ins, ref op);
            case Mnemonic.Bt: return BindBitTest(in ins, ref op, BitHandlers.Bt);
            case Mnemonic.Bts: return BindBitTest(in ins, ref op, BitHandlers.Bts);
            case Mnemonic.Btr: return BindBitTest(in ins, ref op, BitHandlers.Btr);
            case Mnemonic.Btc: return BindBitTest(in ins, ref op, BitHandlers.Btc);
            case Mnemonic.Bsf: return BindBitScan(in ins, ref op, 0);
            case Mnemonic.Bsr: return BindBitScan(in ins, ref op, 1);
            case Mnemonic.Tzcnt: return BindBitScan(in ins, ref op, 2);
            case Mnemonic.Lzcnt: return BindBitScan(in ins, ref op, 3);
            case Mnemonic.Popcnt: return BindBitScan(in ins, ref op, 4);
            case Mnemonic.Cmovo:
            case Mnemonic.Cmovno:
            case Mnemonic.Cmovb:
            case Mnemonic.Cmovae:
            case Mnemonic.Cmove:
            case Mnemonic.Cmovne:
            case Mnemonic.Cmovbe:
            case Mnemonic.Cmova:
            case Mnemonic.Cmovs:
            case Mnemonic.Cmovns:
            case Mnemonic.Cmovp:
            case Mnemonic.Cmovnp:
            case Mnemonic.Cmovl:
            case Mnemonic.Cmovge:
            case Mnemonic.Cmovle:
            case Mnemonic.Cmovg:
                return BindCmov(in ins, ref op);
            case Mnemonic.Seto:
            case Mnemonic.Setno:
            case Mnemonic.Setb:
            case Mnemonic.Setae:
            case Mnemonic.Sete:
            case Mnemonic.Setne:
            case Mnemonic.Setbe:
            case Mnemonic.Seta:
            case Mnemonic.Sets:
            case Mnemonic.Setns:
            case Mnemonic.Setp:
            case Mnemonic.Setnp:
            case Mnemonic.Setl:
            case Mnemonic.Setge:
            case Mnemonic.Setle:
            case Mnemonic.Setg:
                op.Aux = (ushort)((int)ins.ConditionCode - 1);
                if (IsMemory(in ins, 0))
                {
                    BindMemory(in ins, ref op);
                    op.Handler = &MoveHandlers.SetccM;
                }
                else
                {
                    op.Reg = Gpr(ins.Op0Register);
                    op.Handler = &MoveHandlers.SetccR;
                }

                return false;
            case Mnemonic.Clc: op.Handler = &MiscHandlers.Clc; return false;
            case Mnemonic.Stc: op.Handler = &MiscHandlers.Stc; return false;
            case Mnemonic.Cmc: op.Handler = &MiscHandlers.Cmc; return false;
            case Mnemonic.Cld: op.Handler = &MiscHandlers.Cld; return false;
            case Mnemonic.Std: op.Handler = &MiscHandlers.Std; return false;
            case Mnemonic.Daa: op.Handler = &LegacyHandlers.Daa; return false;
            case Mnemonic.Das: op.Handler = &LegacyHandlers.Das; return false;
            case Mnemonic.Aaa: op.Handler = &LegacyHandlers.AsciiAdjust; return false;
            case Mnemonic.Aas:
                op.Aux = 1;
                op.Handler = &LegacyHandlers.AsciiAdjust;
                return false;
            case Mnemonic.Aam:
                op.Imm = ins.Immediate8;
                op.Handler = &LegacyHandlers.Aam;
                return false;
            case Mnemonic.Aad:
                op.Imm = ins.Immediate8;
                op.Handler = &LegacyHandlers.Aad;
                return false;
            case Mnemonic.Salc: op.Handler = &LegacyHandlers.Salc; return false;
            case Mnemonic.Bound:
                BindMemory(in ins, ref op);
                op.Reg = Gpr(ins.Op0Register);
                op.Aux = (ushort)RegisterSize(ins.Op0Register);
                op.Handler = &LegacyHandlers.Bound;
                return false;
            case Mnemonic.Arpl:
                BindRm(in ins, 0, ref op);
                op.Reg = Gpr(ins.Op1Register);
                op.Handler = &LegacyHandlers.Arpl;
                return false;
            case Mnemonic.Movnti: return BindMov(in ins, ref op);
            case Mnemonic.Lahf: op.Handler = &MiscHandlers.Lahf; return false;
            case Mnemonic.Sahf: op.Handler = &MiscHandlers.Sahf; return false;
            case Mnemonic.Cbw: op.Handler = &MiscHandlers.SignExtendAccumulator<Size16>; return false;
            case Mnemonic.Cwde: op.Handler = &MiscHandlers.SignExtendAccumulator<Size32>; return false;
            case Mnemonic.Cdqe: op.Handler = &MiscHandlers.SignExtendAccumulator<Size64>; return false;
            case Mnemonic.Cwd: op.Handler = &MiscHandlers.SignFill<Size16>; return false;
            case Mnemonic.Cdq: op.Handler = &MiscHandlers.SignFill<Size32>; return false;
            case Mnemonic.Cqo: op.Handler = &MiscHandlers.SignFill<Size64>; return false;
            case Mnemonic.Xlatb:
                BindStringSource(in ins, ref op);
                op.Handler = &MiscHandlers.Xlat;
                return false;
            case Mnemonic.Movsb:
            case Mnemonic.Movsw:
            case Mnemonic.Movsd when ins.Code == Code.Movsd_m32_m32:
            case Mnemonic.Movsq:
                BindStringSource(in ins, ref op);
                op.Handler = Sized(ins.MemorySize.GetSize(), &StringHandlers.Movs<Size8>, &StringHandlers.Movs<Size16>, &StringHandlers.Movs<Size32>, &StringHandlers.Movs<Size64>);
                return false;
            case Mnemonic.Stosb:
            case Mnemonic.Stosw:
            case Mnemonic.Stosd:
            case Mnemonic.Stosq:
                BindStringSource(in ins, ref op);
                op.Handler = Sized(ins.MemorySize.GetSize(), &StringHandlers.Stos<Size8>, &StringHandlers.Stos<Size16>, &StringHandlers.Stos<Size32>, &StringHandlers.Stos<Size64>);
                return false;
            case Mnemonic.Lodsb:
            case Mnemonic.Lodsw:
            case Mnemonic.Lodsd:
            case Mnemonic.Lodsq:
                BindStringSource(in ins, ref op);
                op.Handler = Sized(ins.MemorySize.GetSize(), &StringHandlers.Lods<Size8>, &StringHandlers.Lods<Size16>, &StringHandlers.Lods<Size32>, &StringHandlers.Lods<Size64>);
                return false;
            case Mnemonic.Cmpsb:
            case Mnemonic.Cmpsw:
            case Mnemonic.Cmpsd when ins.Code == Code.Cmpsd_m32_m32:
            case Mnemonic.Cmpsq:
                BindStringSource(in ins, ref op);
                op.Handler = Sized(ins.MemorySize.GetSize(), &StringHandlers.Cmps<Size8>, &StringHandlers.Cmps<Size16>, &StringHandlers.Cmps<Size32>, &StringHandlers.Cmps<Size64>);
                return false;
            case Mnemonic.Scasb:
            case Mnemonic.Scasw:
            case Mnemonic.Scasd:
            case Mnemonic.Scasq:
                BindStringSource(in ins, ref op);
                op.Handler = Sized(ins.MemorySize.GetSize(), &StringHandlers.Scas<Size8>, &StringHandlers.Scas<Size16>, &StringHandlers.Scas<Size32>, &StringHandlers.Scas<Size64>);
                return false;
            default:
                return null;
        }
    }

    /// <summary>String operands: source segment (DS or override) and the address size from the rSI/rDI operand kind.</summary>
    private void BindStringSource(in Instruction ins, ref Op op)
    {
        op.AddrSize = (byte)(_bitness / 8);
        for (int i = 0; i < ins.OpCount; i++)
        {
            switch (ins.GetOpKind(i))
            {
                case OpKind.MemorySegSI:
                case OpKind.MemoryESDI:
                case OpKind.MemorySegDI:
                    op.AddrSize = 2;
                    break;
                case OpKind.MemorySegESI:
                case OpKind.MemoryESEDI:
                case OpKind.MemorySegEDI:
                    op.AddrSize = 4;
                    break;
                case OpKind.MemorySegRSI:
                case OpKind.MemoryESRDI:
                case OpKind.MemorySegRDI:
                    op.AddrSize = 8;
                    break;
            }
        }

        if (ins.Mnemonic == Mnemonic.Xlatb)
        {
            op.AddrSize = (byte)AddressSize(ins.MemoryBase);
        }

        Register segment = ins.MemorySegment;
        if (_bitness == 64 && segment is Register.ES or Register.CS or Register.SS or Register.DS)
        {
            segment = Register.DS;
        }

        SetSegment(segment, ref op);
        op.OpSize = (byte)Math.Max(1, ins.MemorySize.GetSize());
    }

    private bool BindAlu(in Instruction ins, ref Op op, nint[] table)
    {
        int form;
        int size = Op0Size(in ins);
        bool locked = (op.Flags & OpFlags.Lock) != 0;
        if (ins.Op0Kind == OpKind.Register)
        {
            op.Reg = Gpr(ins.Op0Register);
            if (ins.Op1Kind == OpKind.Register)
            {
                op.Rm = Gpr(ins.Op1Register);
                form = AluHandlers.FormRR;
            }
            else if (ins.Op1Kind == OpKind.Memory)
            {
                BindMemory(in ins, ref op);
                form = AluHandlers.FormRM;
            }
            else
            {
                op.Imm = ins.GetImmediate(1);
                form = AluHandlers.FormRI;
            }
        }
        else
        {
            BindMemory(in ins, ref op);
            if (ins.Op1Kind == OpKind.Register)
            {
                op.Reg = Gpr(ins.Op1Register);
                form = locked ? AluHandlers.FormMRLock : AluHandlers.FormMR;
            }
            else
            {
                op.Imm = ins.GetImmediate(1);
                form = locked ? AluHandlers.FormMILock : AluHandlers.FormMI;
            }
        }

        op.Handler = (delegate*<X86Cpu, ref Op, void>)table[(form * 4) + SizeIndex(size)];
        return false;
    }

    private bool BindUnary(in Instruction ins, ref Op op, int kind)
    {
        int size = Op0Size(in ins);
        int form;
        if (ins.Op0Kind == OpKind.Register)
        {
            op.Reg = Gpr(ins.Op0Register);
            form = 0;
        }
        else
        {
            BindMemory(in ins, ref op);
            form = (op.Flags & OpFlags.Lock) != 0 ? 2 : 1;
        }

        op.Handler = (delegate*<X86Cpu, ref Op, void>)UnaryHandlers.Table[(kind * 12) + (form * 4) + SizeIndex(size)];
        return false;
    }

    private bool? BindMov(in Instruction ins, ref Op op)
    {
        OpKind k0 = ins.Op0Kind;
        OpKind k1 = ins.Op1Kind;
        if ((k0 == OpKind.Register && !ins.Op0Register.IsGPR()) || (k1 == OpKind.Register && !ins.Op1Register.IsGPR()))
        {
            return null; // segment, control and debug register moves are system instructions
        }

        int size = Op0Size(in ins);
        if (k0 == OpKind.Register)
        {
            op.Reg = Gpr(ins.Op0Register);
            if (k1 == OpKind.Register)
            {
                op.Rm = Gpr(ins.Op1Register);
                op.Handler = Sized(size, &MoveHandlers.MovRR<Size8>, &MoveHandlers.MovRR<Size16>, &MoveHandlers.MovRR<Size32>, &MoveHandlers.MovRR<Size64>);
            }
            else if (k1 == OpKind.Memory)
            {
                BindMemory(in ins, ref op);
                op.Handler = Sized(size, &MoveHandlers.MovRM<Size8>, &MoveHandlers.MovRM<Size16>, &MoveHandlers.MovRM<Size32>, &MoveHandlers.MovRM<Size64>);
            }
            else
            {
                op.Imm = ins.GetImmediate(1);
                op.Handler = Sized(size, &MoveHandlers.MovRI<Size8>, &MoveHandlers.MovRI<Size16>, &MoveHandlers.MovRI<Size32>, &MoveHandlers.MovRI<Size64>);
            }
        }
        else
        {
            BindMemory(in ins, ref op);
            if (k1 == OpKind.Register)
            {
                op.Reg = Gpr(ins.Op1Register);
                op.Handler = Sized(size, &MoveHandlers.MovMR<Size8>, &MoveHandlers.MovMR<Size16>, &MoveHandlers.MovMR<Size32>, &MoveHandlers.MovMR<Size64>);
            }
            else
            {
                op.Imm = ins.GetImmediate(1);
                op.Handler = Sized(size, &MoveHandlers.MovMI<Size8>, &MoveHandlers.MovMI<Size16>, &MoveHandlers.MovMI<Size32>, &MoveHandlers.MovMI<Size64>);
            }
        }

        return false;
    }

    private bool BindExtend(in Instruction ins, ref Op op, bool signed)
    {
        int dst = RegisterSize(ins.Op0Register);
        int src = ins.Op1Kind == OpKind.Register ? RegisterSize(ins.Op1Register) : ins.MemorySize.GetSize();
        op.Reg = Gpr(ins.Op0Register);
        bool memory = IsMemory(in ins, 1);
        BindRm(in ins, 1, ref op);
        if (src >= dst)
        {
            // MOVSXD with a 16/32-bit destination is a plain move.
            op.Handler = memory
                ? Sized(dst, null, &MoveHandlers.MovRM<Size16>, &MoveHandlers.MovRM<Size32>, &MoveHandlers.MovRM<Size64>)
                : Sized(dst, null, &MoveHandlers.MovRR<Size16>, &MoveHandlers.MovRR<Size32>, &MoveHandlers.MovRR<Size64>);
            return false;
        }

        op.Handler = (dst, src, signed, memory) switch
        {
            (2, 1, false, false) => &MoveHandlers.MovzxRR<Size16, Size8>,
            (4, 1, false, false) => &MoveHandlers.MovzxRR<Size32, Size8>,
            (8, 1, false, false) => &MoveHandlers.MovzxRR<Size64, Size8>,
            (4, 2, false, false) => &MoveHandlers.MovzxRR<Size32, Size16>,
            (8, 2, false, false) => &MoveHandlers.MovzxRR<Size64, Size16>,
            (2, 1, false, true) => &MoveHandlers.MovzxRM<Size16, Size8>,
            (4, 1, false, true) => &MoveHandlers.MovzxRM<Size32, Size8>,
            (8, 1, false, true) => &MoveHandlers.MovzxRM<Size64, Size8>,
            (4, 2, false, true) => &MoveHandlers.MovzxRM<Size32, Size16>,
            (8, 2, false, true) => &MoveHandlers.MovzxRM<Size64, Size16>,
            (2, 1, true, false) => &MoveHandlers.MovsxRR<Size16, Size8>,
            (4, 1, true, false) => &MoveHandlers.MovsxRR<Size32, Size8>,
            (8, 1, true, false) => &MoveHandlers.MovsxRR<Size64, Size8>,
            (4, 2, true, false) => &MoveHandlers.MovsxRR<Size32, Size16>,
            (8, 2, true, false) => &MoveHandlers.MovsxRR<Size64, Size16>,
            (8, 4, true, false) => &MoveHandlers.MovsxRR<Size64, Size32>,
            (2, 1, true, true) => &MoveHandlers.MovsxRM<Size16, Size8>,
            (4, 1, true, true) => &MoveHandlers.MovsxRM<Size32, Size8>,
            (8, 1, true, true) => &MoveHandlers.MovsxRM<Size64, Size8>,
            (4, 2, true, true) => &MoveHandlers.MovsxRM<Size32, Size16>,
            (8, 2, true, true) => &MoveHandlers.MovsxRM<Size64, Size16>,
            (8, 4, true, true) => &MoveHandlers.MovsxRM<Size64, Size32>,
            _ => &MiscHandlers.Unimplemented,
        };
        return false;
    }

    private bool BindLea(in Instruction ins, ref Op op)
    {
        op.Reg = Gpr(ins.Op0Register);
        BindMemory(in ins, ref op);
        op.Handler = Sized(RegisterSize(ins.Op0Register), null, &MoveHandlers.Lea<Size16>, &MoveHandlers.Lea<Size32>, &MoveHandlers.Lea<Size64>);
        return false;
    }

    private bool BindXchg(in Instruction ins, ref Op op)
    {
        int size = Op0Size(in ins);
        if (ins.Op0Kind == OpKind.Register && ins.Op1Kind == OpKind.Register)
        {
            op.Reg = Gpr(ins.Op0Register);
            op.Rm = Gpr(ins.Op1Register);
            op.Handler = Sized(size, &ExchangeHandlers.XchgRR<Size8>, &ExchangeHandlers.XchgRR<Size16>, &ExchangeHandlers.XchgRR<Size32>, &ExchangeHandlers.XchgRR<Size64>);
            return false;
        }

        // XCHG with memory is always locked; operand order does not matter.
        op.Reg = Gpr(ins.Op0Kind == OpKind.Register ? ins.Op0Register : ins.Op1Register);
        BindMemory(in ins, ref op);
        op.Handler = Sized(size, &ExchangeHandlers.XchgRM<Size8>, &ExchangeHandlers.XchgRM<Size16>, &ExchangeHandlers.XchgRM<Size32>, &ExchangeHandlers.XchgRM<Size64>);
        return false;
    }

    private bool BindXadd(in Instruction ins, ref Op op)
    {
        int size = Op0Size(in ins);
        op.Reg = Gpr(ins.Op1Register);
        if (ins.Op0Kind == OpKind.Register)
        {
            op.Rm = Gpr(ins.Op0Register);
            op.Handler = Sized(size, &ExchangeHandlers.XaddRR<Size8>, &ExchangeHandlers.XaddRR<Size16>, &ExchangeHandlers.XaddRR<Size32>, &ExchangeHandlers.XaddRR<Size64>);
        }
        else
        {
            BindMemory(in ins, ref op);
            op.Handler = Sized(size, &ExchangeHandlers.XaddRM<Size8>, &ExchangeHandlers.XaddRM<Size16>, &ExchangeHandlers.XaddRM<Size32>, &ExchangeHandlers.XaddRM<Size64>);
        }

        return false;
    }

    private bool BindCmpxchg(in Instruction ins, ref Op op)
    {
        int size = Op0Size(in ins);
        op.Reg = Gpr(ins.Op1Register);
        if (ins.Op0Kind == OpKind.Register)
        {
            op.Rm = Gpr(ins.Op0Register);
            op.Handler = Sized(size, &ExchangeHandlers.CmpxchgRR<Size8>, &ExchangeHandlers.CmpxchgRR<Size16>, &ExchangeHandlers.CmpxchgRR<Size32>, &ExchangeHandlers.CmpxchgRR<Size64>);
        }
        else
        {
            BindMemory(in ins, ref op);
            op.Handler = Sized(size, &ExchangeHandlers.CmpxchgRM<Size8>, &ExchangeHandlers.CmpxchgRM<Size16>, &ExchangeHandlers.CmpxchgRM<Size32>, &ExchangeHandlers.CmpxchgRM<Size64>);
        }

        return false;
    }

    private bool BindMovbe(in Instruction ins, ref Op op)
    {
        BindMemory(in ins, ref op);
        if (ins.Op0Kind == OpKind.Register)
        {
            op.Reg = Gpr(ins.Op0Register);
            op.Handler = Sized(RegisterSize(ins.Op0Register), null, &MoveHandlers.MovbeRM<Size16>, &MoveHandlers.MovbeRM<Size32>, &MoveHandlers.MovbeRM<Size64>);
        }
        else
        {
            op.Reg = Gpr(ins.Op1Register);
            op.Handler = Sized(RegisterSize(ins.Op1Register), null, &MoveHandlers.MovbeMR<Size16>, &MoveHandlers.MovbeMR<Size32>, &MoveHandlers.MovbeMR<Size64>);
        }

        return false;
    }

    private bool BindShift(in Instruction ins, ref Op op, int kind)
    {
        int size = Op0Size(in ins);
        op.Aux = (ushort)kind;
        bool byCl = ins.Op1Kind == OpKind.Register;
        if (!byCl)
        {
            op.Imm = ins.Op1Kind == OpKind.Immediate8 ? ins.Immediate8 : 1UL;
        }

        if (ins.Op0Kind == OpKind.Register)
        {
            op.Reg = Gpr(ins.Op0Register);
            op.Handler = byCl
                ? Sized(size, &ShiftHandlers.RCl<Size8>, &ShiftHandlers.RCl<Size16>, &ShiftHandlers.RCl<Size32>, &ShiftHandlers.RCl<Size64>)
                : Sized(size, &ShiftHandlers.RImm<Size8>, &ShiftHandlers.RImm<Size16>, &ShiftHandlers.RImm<Size32>, &ShiftHandlers.RImm<Size64>);
        }
        else
        {
            BindMemory(in ins, ref op);
            op.Handler = byCl
                ? Sized(size, &ShiftHandlers.MCl<Size8>, &ShiftHandlers.MCl<Size16>, &ShiftHandlers.MCl<Size32>, &ShiftHandlers.MCl<Size64>)
                : Sized(size, &ShiftHandlers.MImm<Size8>, &ShiftHandlers.MImm<Size16>, &ShiftHandlers.MImm<Size32>, &ShiftHandlers.MImm<Size64>);
        }

        return false;
    }

    private bool BindDoubleShift(in Instruction ins, ref Op op, bool left)
    {
        int size = Op0Size(in ins);
        op.Aux = left ? (ushort)1 : (ushort)0;
        op.Rm = Gpr(ins.Op1Register);
        bool byCl = ins.Op2Kind == OpKind.Register;
        if (!byCl)
        {
            op.Imm = ins.Immediate8;
        }

        if (ins.Op0Kind == OpKind.Register)
        {
            op.Reg = Gpr(ins.Op0Register);
            op.Handler = byCl
                ? Sized(size, null, &ShiftHandlers.DoubleRCl<Size16>, &ShiftHandlers.DoubleRCl<Size32>, &ShiftHandlers.DoubleRCl<Size64>)
                : Sized(size, null, &ShiftHandlers.DoubleRImm<Size16>, &ShiftHandlers.DoubleRImm<Size32>, &ShiftHandlers.DoubleRImm<Size64>);
        }
        else
        {
            BindMemory(in ins, ref op);
            op.Handler = byCl
                ? Sized(size, null, &ShiftHandlers.DoubleMCl<Size16>, &ShiftHandlers.DoubleMCl<Size32>, &ShiftHandlers.DoubleMCl<Size64>)
                : Sized(size, null, &ShiftHandlers.DoubleMImm<Size16>, &ShiftHandlers.DoubleMImm<Size32>, &ShiftHandlers.DoubleMImm<Size64>);
        }

        return false;
    }

    private bool BindMulDiv(in Instruction ins, ref Op op, int kind)
    {
        int size = Op0Size(in ins);
        BindRm(in ins, 0, ref op);
        op.Handler = kind switch
        {
            0 => Sized(size, &MulDivHandlers.Mul<Size8>, &MulDivHandlers.Mul<Size16>, &MulDivHandlers.Mul<Size32>, &MulDivHandlers.Mul<Size64>),
            2 => Sized(size, &MulDivHandlers.Div<Size8>, &MulDivHandlers.Div<Size16>, &MulDivHandlers.Div<Size32>, &MulDivHandlers.Div<Size64>),
            3 => Sized(size, &MulDivHandlers.Idiv<Size8>, &MulDivHandlers.Idiv<Size16>, &MulDivHandlers.Idiv<Size32>, &MulDivHandlers.Idiv<Size64>),
            _ => Sized(size, &MulDivHandlers.Imul1<Size8>, &MulDivHandlers.Imul1<Size16>, &MulDivHandlers.Imul1<Size32>, &MulDivHandlers.Imul1<Size64>),
        };
        return false;
    }

    private bool BindImul(in Instruction ins, ref Op op)
    {
        if (ins.OpCount == 1)
        {
            return BindMulDiv(in ins, ref op, 1);
        }

        int size = RegisterSize(ins.Op0Register);
        op.Reg = Gpr(ins.Op0Register);
        BindRm(in ins, 1, ref op);
        if (ins.OpCount == 3)
        {
            op.Imm = ins.GetImmediate(2);
            op.Aux = 1;
        }

        op.Handler = Sized(size, null, &MulDivHandlers.Imul2<Size16>, &MulDivHandlers.Imul2<Size32>, &MulDivHandlers.Imul2<Size64>);
        return false;
    }

    private bool BindBitTest(in Instruction ins, ref Op op, int kind)
    {
        int size = Op0Size(in ins);
        op.Aux = (ushort)kind;
        bool locked = (op.Flags & OpFlags.Lock) != 0;
        bool immediate = ins.Op1Kind != OpKind.Register;
        if (immediate)
        {
            op.Imm = ins.Immediate8;
        }
        else
        {
            op.Rm = Gpr(ins.Op1Register);
        }

        if (ins.Op0Kind == OpKind.Register)
        {
            op.Reg = Gpr(ins.Op0Register);
            op.Handler = immediate
                ? Sized(size, null, &BitHandlers.RI<Size16>, &BitHandlers.RI<Size32>, &BitHandlers.RI<Size64>)
                : Sized(size, null, &BitHandlers.RR<Size16>, &BitHandlers.RR<Size32>, &BitHandlers.RR<Size64>);
            return false;
        }

        BindMemory(in ins, ref op);
        op.Handler = (immediate, locked) switch
        {
            (true, false) => Sized(size, null, &BitHandlers.MI<Size16>, &BitHandlers.MI<Size32>, &BitHandlers.MI<Size64>),
            (true, true) => Sized(size, null, &BitHandlers.MILock<Size16>, &BitHandlers.MILock<Size32>, &BitHandlers.MILock<Size64>),
            (false, false) => Sized(size, null, &BitHandlers.MR<Size16>, &BitHandlers.MR<Size32>, &BitHandlers.MR<Size64>),
            _ => Sized(size, null, &BitHandlers.MRLock<Size16>, &BitHandlers.MRLock<Size32>, &BitHandlers.MRLock<Size64>),
        };
        return false;
    }

    private bool BindBitScan(in Instruction ins, ref Op op, int kind)
    {
        int size = RegisterSize(ins.Op0Register);
        op.Reg = Gpr(ins.Op0Register);
        BindRm(in ins, 1, ref op);
        op.Handler = kind switch
        {
            0 => Sized(size, null, &BitHandlers.Bsf<Size16>, &BitHandlers.Bsf<Size32>, &BitHandlers.Bsf<Size64>),
            1 => Sized(size, null, &BitHandlers.Bsr<Size16>, &BitHandlers.Bsr<Size32>, &BitHandlers.Bsr<Size64>),
            2 => Sized(size, null, &BitHandlers.Tzcnt<Size16>, &BitHandlers.Tzcnt<Size32>, &BitHandlers.Tzcnt<Size64>),
            3 => Sized(size, null, &BitHandlers.Lzcnt<Size16>, &BitHandlers.Lzcnt<Size32>, &BitHandlers.Lzcnt<Size64>),
            _ => Sized(size, null, &BitHandlers.Popcnt<Size16>, &BitHandlers.Popcnt<Size32>, &BitHandlers.Popcnt<Size64>),
        };
        return false;
    }

    private bool BindCmov(in Instruction ins, ref Op op)
    {
        int size = RegisterSize(ins.Op0Register);
        op.Aux = (ushort)((int)ins.ConditionCode - 1);
        op.Reg = Gpr(ins.Op0Register);
        if (IsMemory(in ins, 1))
        {
            BindMemory(in ins, ref op);
            op.Handler = Sized(size, null, &MoveHandlers.CmovRM<Size16>, &MoveHandlers.CmovRM<Size32>, &MoveHandlers.CmovRM<Size64>);
        }
        else
        {
            op.Rm = Gpr(ins.Op1Register);
            op.Handler = Sized(size, null, &MoveHandlers.CmovRR<Size16>, &MoveHandlers.CmovRR<Size32>, &MoveHandlers.CmovRR<Size64>);
        }

        return false;
    }
}
