using Iced.Intel;

namespace SharpVisor.Emulator;

/// <summary>
/// Binding of system instructions: port I/O, control/debug/segment register moves, descriptor
/// tables, far transfers, IRET, MSRs and fast system calls. Instructions for features the CPU
/// model does not advertise (INVPCID, RDPID, VMX, MONITOR/MWAIT, ...) stay unbound and raise #UD.
/// </summary>
internal unsafe partial struct InstructionBinder
{
    private bool? BindSystem(in Instruction ins, ref Op op)
    {
        switch (ins.Mnemonic)
        {
            case Mnemonic.In:
            {
                op.Aux = (ushort)(ins.Op1Kind == OpKind.Register ? 1 : 0);
                op.Imm = ins.Op1Kind == OpKind.Register ? 0UL : ins.Immediate8;
                op.Handler = Sized(RegisterSize(ins.Op0Register), &IoHandlers.In<Size8>, &IoHandlers.In<Size16>, &IoHandlers.In<Size32>, null);
                return false;
            }

            case Mnemonic.Out:
            {
                op.Aux = (ushort)(ins.Op0Kind == OpKind.Register ? 1 : 0);
                op.Imm = ins.Op0Kind == OpKind.Register ? 0UL : ins.Immediate8;
                op.Handler = Sized(RegisterSize(ins.Op1Register), &IoHandlers.Out<Size8>, &IoHandlers.Out<Size16>, &IoHandlers.Out<Size32>, null);
                return false;
            }

            case Mnemonic.Insb:
            case Mnemonic.Insw:
            case Mnemonic.Insd:
                BindStringSource(in ins, ref op);
                op.Handler = Sized(ins.MemorySize.GetSize(), &SystemHandlers.Ins<Size8>, &SystemHandlers.Ins<Size16>, &SystemHandlers.Ins<Size32>, null);
                return false;
            case Mnemonic.Outsb:
            case Mnemonic.Outsw:
            case Mnemonic.Outsd:
                BindStringSource(in ins, ref op);
                op.Handler = Sized(ins.MemorySize.GetSize(), &SystemHandlers.Outs<Size8>, &SystemHandlers.Outs<Size16>, &SystemHandlers.Outs<Size32>, null);
                return false;
            case Mnemonic.Mov:
                return BindSystemMove(in ins, ref op);
            case Mnemonic.Push when ins.Op0Kind == OpKind.Register && ins.Op0Register.IsSegmentRegister():
                op.Reg = SegmentNumber(ins.Op0Register);
                op.Handler = Sized(-ins.StackPointerIncrement, null, &SystemHandlers.PushSreg<Size16>, &SystemHandlers.PushSreg<Size32>, &SystemHandlers.PushSreg<Size64>);
                return false;
            case Mnemonic.Pop when ins.Op0Kind == OpKind.Register && ins.Op0Register.IsSegmentRegister():
                if (ins.Op0Register == Register.CS)
                {
                    op.Handler = &MiscHandlers.Undefined;
                    return true;
                }

                op.Reg = SegmentNumber(ins.Op0Register);
                op.Handler = Sized(ins.StackPointerIncrement, null, &SystemHandlers.PopSreg<Size16>, &SystemHandlers.PopSreg<Size32>, &SystemHandlers.PopSreg<Size64>);
                return false;
            case Mnemonic.Jmp when ins.Op0Kind is OpKind.FarBranch16 or OpKind.FarBranch32:
            case Mnemonic.Call when ins.Op0Kind is OpKind.FarBranch16 or OpKind.FarBranch32:
                op.Imm = ins.Op0Kind == OpKind.FarBranch16 ? ins.FarBranch16 : ins.FarBranch32;
                op.Aux = ins.FarBranchSelector;
                op.OpSize = (byte)(ins.Op0Kind == OpKind.FarBranch16 ? 2 : 4);
                op.Handler = ins.Mnemonic == Mnemonic.Jmp ? &SystemHandlers.JmpFarImmediate : &SystemHandlers.CallFarImmediate;
                return true;
            case Mnemonic.Jmp when ins.Op0Kind == OpKind.Memory && IsFarPointer(ins.MemorySize):
            case Mnemonic.Call when ins.Op0Kind == OpKind.Memory && IsFarPointer(ins.MemorySize):
                BindMemory(in ins, ref op);
                op.OpSize = FarPointerOffsetSize(ins.MemorySize);
                op.Handler = ins.Mnemonic == Mnemonic.Jmp ? &SystemHandlers.JmpFarMemory : &SystemHandlers.CallFarMemory;
                return true;
            case Mnemonic.Retf:
                op.Imm = ins.OpCount == 1 ? ins.Immediate16 : 0UL;
                op.OpSize = (byte)(ins.Code is Code.Retfw or Code.Retfw_imm16 ? 2 : ins.Code is Code.Retfd or Code.Retfd_imm16 ? 4 : 8);
                op.Handler = &SystemHandlers.RetFar;
                return true;
            case Mnemonic.Iret:
            case Mnemonic.Iretd:
            case Mnemonic.Iretq:
                op.OpSize = (byte)(ins.Code == Code.Iretw ? 2 : ins.Code == Code.Iretd ? 4 : 8);
                op.Handler = &SystemHandlers.Iret;
                return true;
            case Mnemonic.Lds:
            case Mnemonic.Les:
            case Mnemonic.Lfs:
            case Mnemonic.Lgs:
            case Mnemonic.Lss:
                BindMemory(in ins, ref op);
                op.Reg = Gpr(ins.Op0Register);
                op.OpSize = (byte)RegisterSize(ins.Op0Register);
                op.Aux = ins.Mnemonic switch
                {
                    Mnemonic.Lds => X86Cpu.SegDs,
                    Mnemonic.Les => X86Cpu.SegEs,
                    Mnemonic.Lfs => X86Cpu.SegFs,
                    Mnemonic.Lgs => X86Cpu.SegGs,
                    _ => X86Cpu.SegSs,
                };
                op.Handler = &SystemHandlers.LoadFarPointer;
                return false;
            case Mnemonic.Lgdt:
            case Mnemonic.Lidt:
                BindMemory(in ins, ref op);
                op.Aux = (ushort)(ins.Mnemonic == Mnemonic.Lidt ? 1 : 0);
                op.OpSize = (byte)(ins.Code is Code.Lgdt_m1632_16 or Code.Lidt_m1632_16 ? 2 : _bitness == 64 ? 8 : 4);
                op.Handler = &SystemHandlers.LoadDescriptorTable;
                return false;
            case Mnemonic.Sgdt:
            case Mnemonic.Sidt:
                BindMemory(in ins, ref op);
                op.Aux = (ushort)(ins.Mnemonic == Mnemonic.Sidt ? 1 : 0);
                op.Handler = &SystemHandlers.StoreDescriptorTable;
                return false;
            case Mnemonic.Lldt:
                BindSelectorOperand(in ins, 0, ref op);
                op.Handler = &SystemHandlers.Lldt;
                return false;
            case Mnemonic.Ltr:
                BindSelectorOperand(in ins, 0, ref op);
                op.Handler = &SystemHandlers.Ltr;
                return false;
            case Mnemonic.Lmsw:
                BindSelectorOperand(in ins, 0, ref op);
                op.Handler = &SystemHandlers.Lmsw;
                return true;
            case Mnemonic.Sldt:
                BindSelectorOperand(in ins, 0, ref op);
                op.Handler = &SystemHandlers.Sldt;
                return false;
            case Mnemonic.Str:
                BindSelectorOperand(in ins, 0, ref op);
                op.Handler = &SystemHandlers.Str;
                return false;
            case Mnemonic.Smsw:
                BindSelectorOperand(in ins, 0, ref op);
                op.Handler = &SystemHandlers.Smsw;
                return false;
            case Mnemonic.Lar:
            case Mnemonic.Lsl:
                op.Reg = Gpr(ins.Op0Register);
                op.OpSize = (byte)RegisterSize(ins.Op0Register);
                BindRm(in ins, 1, ref op);
                op.Handler = ins.Mnemonic == Mnemonic.Lar ? &SystemHandlers.Lar : &SystemHandlers.Lsl;
                return false;
            case Mnemonic.Verr:
            case Mnemonic.Verw:
                BindSelectorOperand(in ins, 0, ref op);
                op.Aux = (ushort)(ins.Mnemonic == Mnemonic.Verw ? 1 : 0);
                op.Handler = &SystemHandlers.Verify;
                return false;
            case Mnemonic.Clts: op.Handler = &SystemHandlers.Clts; return false;
            case Mnemonic.Invlpg:
                BindMemory(in ins, ref op);
                op.Handler = &SystemHandlers.Invlpg;
                return false;
            case Mnemonic.Wbinvd:
            case Mnemonic.Invd:
                op.Handler = &SystemHandlers.PrivilegedNop;
                return false;
            case Mnemonic.Rdmsr: op.Handler = &SystemHandlers.Rdmsr; return false;
            case Mnemonic.Wrmsr: op.Handler = &SystemHandlers.Wrmsr; return false;
            case Mnemonic.Rdpmc: op.Handler = &SystemHandlers.Rdpmc; return true;
            case Mnemonic.Syscall: op.Handler = &SystemHandlers.Syscall; return true;
            case Mnemonic.Sysret:
            case Mnemonic.Sysretq:
                op.Aux = (ushort)(ins.Code == Code.Sysretq ? 1 : 0);
                op.Handler = &SystemHandlers.Sysret;
                return true;
            case Mnemonic.Sysenter when _cpu.Model.Has(CpuFeature.Sep):
                op.Handler = &SystemHandlers.Sysenter;
                return true;
            case Mnemonic.Sysexit when _cpu.Model.Has(CpuFeature.Sep):
            case Mnemonic.Sysexitq when _cpu.Model.Has(CpuFeature.Sep):
                op.Aux = (ushort)(ins.Code == Code.Sysexitq ? 1 : 0);
                op.Handler = &SystemHandlers.Sysexit;
                return true;
            case Mnemonic.Swapgs: op.Handler = &SystemHandlers.Swapgs; return false;
            case Mnemonic.Stac when _cpu.Model.Has(CpuFeature.Smap): op.Handler = &SystemHandlers.Stac; return false;
            case Mnemonic.Clac when _cpu.Model.Has(CpuFeature.Smap): op.Handler = &SystemHandlers.Clac; return false;
            default:
                return null;
        }
    }

    /// <summary>MOV to or from CRn, DRn and segment registers (general-register moves are bound elsewhere).</summary>
    private bool? BindSystemMove(in Instruction ins, ref Op op)
    {
        Register r0 = ins.Op0Kind == OpKind.Register ? ins.Op0Register : Register.None;
        Register r1 = ins.Op1Kind == OpKind.Register ? ins.Op1Register : Register.None;
        if (r0.IsCR() || r1.IsCR())
        {
            bool to = r0.IsCR();
            op.Reg = (ushort)((to ? r0 : r1) - Register.CR0);
            op.Rm = Gpr(to ? r1 : r0);
            op.Handler = to ? &SystemHandlers.MovToCr : &SystemHandlers.MovFromCr;
            return false;
        }

        if (r0.IsDR() || r1.IsDR())
        {
            bool to = r0.IsDR();
            op.Reg = (ushort)((to ? r0 : r1) - Register.DR0);
            op.Rm = Gpr(to ? r1 : r0);
            op.Handler = to ? &SystemHandlers.MovToDr : &SystemHandlers.MovFromDr;
            return false;
        }

        if (r0.IsSegmentRegister())
        {
            if (r0 == Register.CS)
            {
                op.Handler = &MiscHandlers.Undefined;
                return true;
            }

            op.Reg = SegmentNumber(r0);
            BindSelectorOperand(in ins, 1, ref op);
            op.Handler = &SystemHandlers.MovToSreg;
            return false;
        }

        if (r1.IsSegmentRegister())
        {
            op.Reg = SegmentNumber(r1);
            BindSelectorOperand(in ins, 0, ref op);
            op.Handler = &SystemHandlers.MovFromSreg;
            return false;
        }

        return null;
    }

    /// <summary>A 16-bit selector r/m operand: memory, or a register (Rm) whose size goes to OpSize.</summary>
    private void BindSelectorOperand(in Instruction ins, int operand, ref Op op)
    {
        BindRm(in ins, operand, ref op);
        op.OpSize = (byte)(ins.GetOpKind(operand) == OpKind.Register ? RegisterSize(ins.GetOpRegister(operand)) : 2);
    }

    private static ushort SegmentNumber(Register segment) => (ushort)(segment - Register.ES);

    private static byte FarPointerOffsetSize(MemorySize size) => size switch
    {
        MemorySize.SegPtr16 => 2,
        MemorySize.SegPtr32 => 4,
        _ => 8,
    };
}
