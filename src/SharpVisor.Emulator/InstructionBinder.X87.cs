using Iced.Intel;

namespace SharpVisor.Emulator;

/// <summary>Binding of x87 instructions.</summary>
internal unsafe partial struct InstructionBinder
{
    private bool? BindX87(in Instruction ins, ref Op op)
    {
        Mnemonic m = ins.Mnemonic;
        if (m == Mnemonic.Wait)
        {
            op.Handler = &X87Handlers.Fwait;
            return false;
        }

        if (!IsX87(m))
        {
            return null;
        }

        op.Imm = X87Opcode();
        switch (m)
        {
            case Mnemonic.Fld:
            case Mnemonic.Fild:
            case Mnemonic.Fbld:
                if (ins.Op0Kind == OpKind.Register)
                {
                    op.Reg = StIndex(ins.Op0Register);
                    op.Handler = &X87Handlers.LoadRegister;
                }
                else
                {
                    BindMemory(in ins, ref op);
                    op.Aux = (ushort)MemoryFormat(ins.MemorySize);
                    op.Handler = &X87Handlers.LoadMemory;
                }

                return false;
            case Mnemonic.Fld1: return Constant(ref op, 0);
            case Mnemonic.Fldl2t: return Constant(ref op, 1);
            case Mnemonic.Fldl2e: return Constant(ref op, 2);
            case Mnemonic.Fldpi: return Constant(ref op, 3);
            case Mnemonic.Fldlg2: return Constant(ref op, 4);
            case Mnemonic.Fldln2: return Constant(ref op, 5);
            case Mnemonic.Fldz: return Constant(ref op, 6);
            case Mnemonic.Fst:
            case Mnemonic.Fstp:
            case Mnemonic.Fstpnce:
            case Mnemonic.Fist:
            case Mnemonic.Fistp:
            case Mnemonic.Fisttp:
            case Mnemonic.Fbstp:
            {
                bool pop = m is Mnemonic.Fstp or Mnemonic.Fstpnce or Mnemonic.Fistp or Mnemonic.Fisttp or Mnemonic.Fbstp;
                if (ins.Op0Kind == OpKind.Register)
                {
                    op.Reg = StIndex(ins.Op0Register);
                    op.Aux = (ushort)(pop ? 0x10 : 0);
                    op.Handler = m == Mnemonic.Fstpnce ? &X87Handlers.StoreRegisterNoChecks : &X87Handlers.StoreRegister;
                }
                else
                {
                    BindMemory(in ins, ref op);
                    op.Aux = (ushort)(MemoryFormat(ins.MemorySize) | (pop ? 0x10 : 0) | (m == Mnemonic.Fisttp ? 0x20 : 0));
                    op.Handler = &X87Handlers.StoreMemory;
                }

                return false;
            }

            case Mnemonic.Fadd:
            case Mnemonic.Faddp:
            case Mnemonic.Fiadd:
                return Arithmetic(in ins, ref op, X87Arithmetic.Add);
            case Mnemonic.Fmul:
            case Mnemonic.Fmulp:
            case Mnemonic.Fimul:
                return Arithmetic(in ins, ref op, X87Arithmetic.Multiply);
            case Mnemonic.Fsub:
            case Mnemonic.Fsubp:
            case Mnemonic.Fisub:
                return Arithmetic(in ins, ref op, X87Arithmetic.Subtract);
            case Mnemonic.Fsubr:
            case Mnemonic.Fsubrp:
            case Mnemonic.Fisubr:
                return Arithmetic(in ins, ref op, X87Arithmetic.SubtractReverse);
            case Mnemonic.Fdiv:
            case Mnemonic.Fdivp:
            case Mnemonic.Fidiv:
                return Arithmetic(in ins, ref op, X87Arithmetic.Divide);
            case Mnemonic.Fdivr:
            case Mnemonic.Fdivrp:
            case Mnemonic.Fidivr:
                return Arithmetic(in ins, ref op, X87Arithmetic.DivideReverse);
            case Mnemonic.Fcom:
            case Mnemonic.Fcomp:
            case Mnemonic.Fcompp:
            case Mnemonic.Ficom:
            case Mnemonic.Ficomp:
            case Mnemonic.Fucom:
            case Mnemonic.Fucomp:
            case Mnemonic.Fucompp:
            case Mnemonic.Fcomi:
            case Mnemonic.Fcomip:
            case Mnemonic.Fucomi:
            case Mnemonic.Fucomip:
            case Mnemonic.Ftst:
            {
                int pops = m is Mnemonic.Fcompp or Mnemonic.Fucompp ? 2
                    : m is Mnemonic.Fcomp or Mnemonic.Ficomp or Mnemonic.Fucomp or Mnemonic.Fcomip or Mnemonic.Fucomip ? 1 : 0;
                bool quiet = m is Mnemonic.Fucom or Mnemonic.Fucomp or Mnemonic.Fucompp or Mnemonic.Fucomi or Mnemonic.Fucomip;
                bool toEflags = m is Mnemonic.Fcomi or Mnemonic.Fcomip or Mnemonic.Fucomi or Mnemonic.Fucomip;
                int source;
                if (m == Mnemonic.Ftst)
                {
                    source = 8;
                }
                else if (m is Mnemonic.Fcompp or Mnemonic.Fucompp)
                {
                    source = 7;
                    op.Reg = 1;
                }
                else if (ins.OpCount == 0)
                {
                    source = 7;
                    op.Reg = 1;
                }
                else if (ins.GetOpKind(ins.OpCount - 1) == OpKind.Register)
                {
                    source = 7;
                    op.Reg = StIndex(ins.GetOpRegister(ins.OpCount - 1));
                }
                else
                {
                    BindMemory(in ins, ref op);
                    source = MemoryFormat(ins.MemorySize);
                }

                op.Aux = (ushort)(source | (quiet ? 0x10 : 0) | (pops << 5) | (toEflags ? 0x80 : 0));
                op.Handler = &X87Handlers.Compare;
                return false;
            }

            case Mnemonic.Fxch:
                op.Reg = ins.OpCount == 0 ? (ushort)1 : StIndex(ins.GetOpRegister(ins.OpCount - 1));
                op.Handler = &X87Handlers.Fxch;
                return false;
            case Mnemonic.Fcmovb: return Fcmov(in ins, ref op, 2);
            case Mnemonic.Fcmove: return Fcmov(in ins, ref op, 4);
            case Mnemonic.Fcmovbe: return Fcmov(in ins, ref op, 6);
            case Mnemonic.Fcmovu: return Fcmov(in ins, ref op, 10);
            case Mnemonic.Fcmovnb: return Fcmov(in ins, ref op, 3);
            case Mnemonic.Fcmovne: return Fcmov(in ins, ref op, 5);
            case Mnemonic.Fcmovnbe: return Fcmov(in ins, ref op, 7);
            case Mnemonic.Fcmovnu: return Fcmov(in ins, ref op, 11);
            case Mnemonic.Ffree:
            case Mnemonic.Ffreep:
                op.Reg = StIndex(ins.Op0Register);
                op.Aux = (ushort)(m == Mnemonic.Ffreep ? 1 : 0);
                op.Handler = &X87Handlers.Ffree;
                return false;
            case Mnemonic.Fincstp:
                op.Aux = 1;
                op.Handler = &X87Handlers.StackPointer;
                return false;
            case Mnemonic.Fdecstp:
                op.Aux = 0;
                op.Handler = &X87Handlers.StackPointer;
                return false;
            case Mnemonic.Fnop:
                op.Handler = &X87Handlers.Fnop;
                return false;
            case Mnemonic.Fneni:
            case Mnemonic.Fndisi:
            case Mnemonic.Fnsetpm:
                op.Handler = &X87Handlers.ObsoleteControl;
                return false;
            case Mnemonic.Fninit: op.Handler = &X87Handlers.Fninit; return false;
            case Mnemonic.Fnclex: op.Handler = &X87Handlers.Fnclex; return false;
            case Mnemonic.Fldcw:
                BindMemory(in ins, ref op);
                op.Handler = &X87Handlers.Fldcw;
                return false;
            case Mnemonic.Fnstcw:
                BindMemory(in ins, ref op);
                op.Handler = &X87Handlers.Fnstcw;
                return false;
            case Mnemonic.Fnstsw:
                if (ins.Op0Kind == OpKind.Register)
                {
                    op.Aux = 1;
                }
                else
                {
                    BindMemory(in ins, ref op);
                }

                op.Handler = &X87Handlers.Fnstsw;
                return false;
            case Mnemonic.Fnstenv:
            case Mnemonic.Fldenv:
            case Mnemonic.Fnsave:
            case Mnemonic.Frstor:
                BindMemory(in ins, ref op);
                op.Aux = (ushort)((m is Mnemonic.Fnsave or Mnemonic.Frstor ? 1 : 0)
                    | (ins.MemorySize is MemorySize.FpuEnv14 or MemorySize.FpuState94 ? 2 : 0));
                op.Handler = m is Mnemonic.Fnstenv or Mnemonic.Fnsave ? &X87Handlers.Fnstenv : &X87Handlers.Fldenv;
                return false;
            case Mnemonic.Fchs: op.Handler = &X87UnaryHandlers.Fchs; return false;
            case Mnemonic.Fabs: op.Handler = &X87UnaryHandlers.Fabs; return false;
            case Mnemonic.Fsqrt: op.Handler = &X87UnaryHandlers.Fsqrt; return false;
            case Mnemonic.Frndint: op.Handler = &X87UnaryHandlers.Frndint; return false;
            case Mnemonic.Fxam: op.Handler = &X87UnaryHandlers.Fxam; return false;
            case Mnemonic.Fscale: op.Handler = &X87UnaryHandlers.Fscale; return false;
            case Mnemonic.Fxtract: op.Handler = &X87UnaryHandlers.Fxtract; return false;
            case Mnemonic.Fprem:
            case Mnemonic.Fprem1:
                op.Aux = (ushort)(m == Mnemonic.Fprem1 ? 1 : 0);
                op.Handler = &X87UnaryHandlers.Fprem;
                return false;
            case Mnemonic.F2xm1: return Transcendental(ref op, X87UnaryHandlers.F2xm1);
            case Mnemonic.Fyl2x: return Transcendental(ref op, X87UnaryHandlers.Fyl2x);
            case Mnemonic.Fyl2xp1: return Transcendental(ref op, X87UnaryHandlers.Fyl2xp1);
            case Mnemonic.Fptan: return Transcendental(ref op, X87UnaryHandlers.Fptan);
            case Mnemonic.Fpatan: return Transcendental(ref op, X87UnaryHandlers.Fpatan);
            case Mnemonic.Fsin: return Transcendental(ref op, X87UnaryHandlers.Fsin);
            case Mnemonic.Fcos: return Transcendental(ref op, X87UnaryHandlers.Fcos);
            case Mnemonic.Fsincos: return Transcendental(ref op, X87UnaryHandlers.Fsincos);
            default:
                return null;
        }
    }

    private static readonly bool[] s_x87Mnemonics = Enum.GetValues<Mnemonic>()
        .Aggregate(new bool[Enum.GetValues<Mnemonic>().Length + 1], (table, m) =>
        {
            table[(int)m] = m.ToString().StartsWith('F') && m is not (Mnemonic.Fxsave or Mnemonic.Fxsave64 or Mnemonic.Fxrstor or Mnemonic.Fxrstor64);
            return table;
        });

    private static bool IsX87(Mnemonic m) => (uint)m < (uint)s_x87Mnemonics.Length && s_x87Mnemonics[(int)m];

    /// <summary>FOP: the low 3 bits of the D8-DF opcode byte and the ModRM byte.</summary>
    private ushort X87Opcode()
    {
        byte* p = InstructionBytes;
        if (p == null)
        {
            return 0;
        }

        int i = 0;
        while (i < 14 && (p[i] is 0x66 or 0x67 or 0xF0 or 0xF2 or 0xF3 or 0x26 or 0x2E or 0x36 or 0x3E or 0x64 or 0x65 || (_bitness == 64 && (p[i] & 0xF0) == 0x40)))
        {
            i++;
        }

        return (ushort)(((p[i] & 7) << 8) | p[i + 1]);
    }

    private static ushort StIndex(Register r) => (ushort)(r - Register.ST0);

    private static int MemoryFormat(MemorySize size) => size switch
    {
        MemorySize.Float32 => X87Handlers.F32,
        MemorySize.Float64 => X87Handlers.F64,
        MemorySize.Float80 => X87Handlers.F80,
        MemorySize.Int16 => X87Handlers.I16,
        MemorySize.Int32 => X87Handlers.I32,
        MemorySize.Int64 => X87Handlers.I64,
        _ => X87Handlers.Bcd,
    };

    private static bool Constant(ref Op op, int index)
    {
        op.Aux = (ushort)index;
        op.Handler = &X87Handlers.LoadConstant;
        return false;
    }

    private static bool Transcendental(ref Op op, int kind)
    {
        op.Aux = (ushort)kind;
        op.Handler = &X87UnaryHandlers.Transcendental;
        return false;
    }

    private static bool Fcmov(in Instruction ins, ref Op op, int condition)
    {
        op.Reg = StIndex(ins.Op1Register);
        op.Aux = (ushort)condition;
        op.Handler = &X87Handlers.Fcmov;
        return false;
    }

    private bool Arithmetic(in Instruction ins, ref Op op, int operation)
    {
        Mnemonic m = ins.Mnemonic;
        bool pop = m is Mnemonic.Faddp or Mnemonic.Fmulp or Mnemonic.Fsubp or Mnemonic.Fsubrp or Mnemonic.Fdivp or Mnemonic.Fdivrp;
        if (ins.OpCount == 1 && ins.Op0Kind == OpKind.Memory)
        {
            BindMemory(in ins, ref op);
            op.Aux = (ushort)(operation | (MemoryFormat(ins.MemorySize) << 4));
            op.Handler = &X87Handlers.ArithmeticMemory;
            return false;
        }

        Register first = ins.OpCount == 0 ? Register.ST1 : ins.Op0Register;
        Register second = ins.OpCount == 0 ? Register.ST0 : ins.OpCount == 1 ? Register.ST0 : ins.Op1Register;
        bool toSti = first != Register.ST0;
        op.Reg = StIndex(toSti ? first : second);
        op.Aux = (ushort)(operation | (toSti ? 8 : 0) | (pop ? 0x10 : 0));
        op.Handler = &X87Handlers.ArithmeticRegister;
        return false;
    }
}
