using Iced.Intel;

namespace SharpVisor.Emulator;

/// <summary>Binding of SSE4.2 string compares and CRC32, BMI1, BMI2 and ADX.</summary>
internal unsafe partial struct InstructionBinder
{
    private bool? BindSse42(in Instruction ins, ref Op op)
    {
        switch (ins.Mnemonic)
        {
            case Mnemonic.Pcmpestri:
            case Mnemonic.Pcmpestri64:
            case Mnemonic.Pcmpestrm:
            case Mnemonic.Pcmpestrm64:
            case Mnemonic.Pcmpistri:
            case Mnemonic.Pcmpistrm:
                op.Aux = (ushort)((ins.Mnemonic is Mnemonic.Pcmpestri or Mnemonic.Pcmpestri64 or Mnemonic.Pcmpestrm or Mnemonic.Pcmpestrm64 ? 1 : 0)
                    | (ins.Mnemonic is Mnemonic.Pcmpestrm or Mnemonic.Pcmpestrm64 or Mnemonic.Pcmpistrm ? 2 : 0)
                    | (ins.Mnemonic is Mnemonic.Pcmpestri64 or Mnemonic.Pcmpestrm64 ? 4 : 0));
                return V(in ins, ref op, &StringCompareHandlers.Compare);
            default:
                return null;
        }
    }

    private bool? BindBmi(in Instruction ins, ref Op op)
    {
        switch (ins.Mnemonic)
        {
            case Mnemonic.Crc32:
                op.Reg = Gpr(ins.Op0Register);
                op.OpSize = (byte)(ins.Op1Kind == OpKind.Register ? RegisterSize(ins.Op1Register) : ins.MemorySize.GetSize());
                BindRm(in ins, 1, ref op);
                op.Handler = &BmiHandlers.Crc32;
                return false;
            case Mnemonic.Andn:
                return Bmi(in ins, ref op, vvvv: 1, rm: 2, &BmiHandlers.Andn<Size32>, &BmiHandlers.Andn<Size64>);
            case Mnemonic.Bextr when ins.OpCount == 3 && ins.Op2Kind == OpKind.Register:
                return Bmi(in ins, ref op, vvvv: 2, rm: 1, &BmiHandlers.Bextr<Size32>, &BmiHandlers.Bextr<Size64>);
            case Mnemonic.Blsi:
                return BmiDestVvvv(in ins, ref op, &BmiHandlers.Blsi<Size32>, &BmiHandlers.Blsi<Size64>);
            case Mnemonic.Blsmsk:
                return BmiDestVvvv(in ins, ref op, &BmiHandlers.Blsmsk<Size32>, &BmiHandlers.Blsmsk<Size64>);
            case Mnemonic.Blsr:
                return BmiDestVvvv(in ins, ref op, &BmiHandlers.Blsr<Size32>, &BmiHandlers.Blsr<Size64>);
            case Mnemonic.Bzhi:
                return Bmi(in ins, ref op, vvvv: 2, rm: 1, &BmiHandlers.Bzhi<Size32>, &BmiHandlers.Bzhi<Size64>);
            case Mnemonic.Mulx:
                return Bmi(in ins, ref op, vvvv: 1, rm: 2, &BmiHandlers.Mulx<Size32>, &BmiHandlers.Mulx<Size64>);
            case Mnemonic.Pdep:
                return Bmi(in ins, ref op, vvvv: 1, rm: 2, &BmiHandlers.Pdep<Size32>, &BmiHandlers.Pdep<Size64>);
            case Mnemonic.Pext:
                return Bmi(in ins, ref op, vvvv: 1, rm: 2, &BmiHandlers.Pext<Size32>, &BmiHandlers.Pext<Size64>);
            case Mnemonic.Rorx:
                op.Imm = ins.Immediate8;
                return Bmi(in ins, ref op, vvvv: -1, rm: 1, &BmiHandlers.Rorx<Size32>, &BmiHandlers.Rorx<Size64>);
            case Mnemonic.Sarx:
            case Mnemonic.Shlx:
            case Mnemonic.Shrx:
                op.Imm = (ulong)(ins.Mnemonic == Mnemonic.Sarx ? 0 : ins.Mnemonic == Mnemonic.Shlx ? 1 : 2);
                return Bmi(in ins, ref op, vvvv: 2, rm: 1, &BmiHandlers.ShiftX<Size32>, &BmiHandlers.ShiftX<Size64>);
            case Mnemonic.Adcx:
            case Mnemonic.Adox:
                op.Reg = Gpr(ins.Op0Register);
                BindRm(in ins, 1, ref op);
                op.Aux = (ushort)(ins.Mnemonic == Mnemonic.Adox ? 1 : 0);
                op.Handler = Sized(RegisterSize(ins.Op0Register), null, null, &BmiHandlers.Adx<Size32>, &BmiHandlers.Adx<Size64>);
                return false;
            default:
                return null;
        }
    }

    private bool Bmi(in Instruction ins, ref Op op, int vvvv, int rm, delegate*<X86Cpu, ref Op, void> h32, delegate*<X86Cpu, ref Op, void> h64)
    {
        op.Reg = Gpr(ins.Op0Register);
        if (vvvv >= 0)
        {
            op.Aux = Gpr(ins.GetOpRegister(vvvv));
        }

        BindRm(in ins, rm, ref op);
        op.Handler = RegisterSize(ins.Op0Register) == 8 ? h64 : h32;
        return false;
    }

    private bool BmiDestVvvv(in Instruction ins, ref Op op, delegate*<X86Cpu, ref Op, void> h32, delegate*<X86Cpu, ref Op, void> h64)
    {
        op.Reg = Gpr(ins.Op0Register);
        BindRm(in ins, 1, ref op);
        op.Handler = RegisterSize(ins.Op0Register) == 8 ? h64 : h32;
        return false;
    }
}
