using Iced.Intel;

namespace SharpVisor.Emulator;

/// <summary>Binding of branches, stack instructions and miscellaneous non-system instructions.</summary>
internal unsafe partial struct InstructionBinder
{
    private bool? BindControl(in Instruction ins, ref Op op)
    {
        switch (ins.Mnemonic)
        {
            case Mnemonic.Jmp when ins.Op0Kind is OpKind.NearBranch16 or OpKind.NearBranch32 or OpKind.NearBranch64:
                BindRelative(in ins, ref op);
                op.Handler = &BranchHandlers.JmpRel;
                return true;
            case Mnemonic.Jmp when ins.Op0Kind == OpKind.Register || (ins.Op0Kind == OpKind.Memory && !IsFarPointer(ins.MemorySize)):
            {
                int size = Op0Size(in ins);
                BindRm(in ins, 0, ref op);
                op.Handler = ins.Op0Kind == OpKind.Register
                    ? Sized(size, null, &BranchHandlers.JmpR<Size16>, &BranchHandlers.JmpR<Size32>, &BranchHandlers.JmpR<Size64>)
                    : Sized(size, null, &BranchHandlers.JmpM<Size16>, &BranchHandlers.JmpM<Size32>, &BranchHandlers.JmpM<Size64>);
                return true;
            }

            case Mnemonic.Jo:
            case Mnemonic.Jno:
            case Mnemonic.Jb:
            case Mnemonic.Jae:
            case Mnemonic.Je:
            case Mnemonic.Jne:
            case Mnemonic.Jbe:
            case Mnemonic.Ja:
            case Mnemonic.Js:
            case Mnemonic.Jns:
            case Mnemonic.Jp:
            case Mnemonic.Jnp:
            case Mnemonic.Jl:
            case Mnemonic.Jge:
            case Mnemonic.Jle:
            case Mnemonic.Jg:
                BindRelative(in ins, ref op);
                op.Aux = (ushort)((int)ins.ConditionCode - 1);
                op.Handler = (delegate*<X86Cpu, ref Op, void>)BranchHandlers.JccTable[op.Aux];

                // Conditional branches do not end a block: the not-taken path runs on.
                return false;
            case Mnemonic.Jcxz:
            case Mnemonic.Jecxz:
            case Mnemonic.Jrcxz:
                BindRelative(in ins, ref op);
                op.AddrSize = (byte)(ins.Mnemonic == Mnemonic.Jcxz ? 2 : ins.Mnemonic == Mnemonic.Jecxz ? 4 : 8);
                op.Handler = &BranchHandlers.Jrcxz;
                return false;
            case Mnemonic.Loop:
            case Mnemonic.Loope:
            case Mnemonic.Loopne:
                BindRelative(in ins, ref op);
                op.AddrSize = LoopCounterSize(ins.Code);
                op.Aux = (ushort)(ins.Mnemonic == Mnemonic.Loope ? 1 : ins.Mnemonic == Mnemonic.Loopne ? 2 : 0);
                if (_cpu._amd && op.Aux != 0 && (ins.HasRepePrefix || ins.HasRepnePrefix))
                {
                    // AMD takes LOOPE/LOOPNE's condition from an F3/F2 prefix when there is one (measured).
                    op.Aux = (ushort)(ins.HasRepnePrefix ? 2 : 1);
                }

                op.Handler = &BranchHandlers.Loop;
                return false;
            case Mnemonic.Call when ins.Op0Kind is OpKind.NearBranch16 or OpKind.NearBranch32 or OpKind.NearBranch64:
            {
                BindRelative(in ins, ref op);
                int size = -ins.StackPointerIncrement;
                op.Handler = Sized(size, null, &BranchHandlers.CallRel<Size16>, &BranchHandlers.CallRel<Size32>, &BranchHandlers.CallRel<Size64>);
                return true;
            }

            case Mnemonic.Call when ins.Op0Kind == OpKind.Register || (ins.Op0Kind == OpKind.Memory && !IsFarPointer(ins.MemorySize)):
            {
                int size = Op0Size(in ins);
                BindRm(in ins, 0, ref op);
                op.Handler = ins.Op0Kind == OpKind.Register
                    ? Sized(size, null, &BranchHandlers.CallR<Size16>, &BranchHandlers.CallR<Size32>, &BranchHandlers.CallR<Size64>)
                    : Sized(size, null, &BranchHandlers.CallM<Size16>, &BranchHandlers.CallM<Size32>, &BranchHandlers.CallM<Size64>);
                return true;
            }

            case Mnemonic.Ret:
            {
                op.Imm = ins.OpCount == 1 ? ins.Immediate16 : 0UL;
                int size = ins.StackPointerIncrement - (int)op.Imm;
                op.Handler = Sized(size, null, &BranchHandlers.Ret<Size16>, &BranchHandlers.Ret<Size32>, &BranchHandlers.Ret<Size64>);
                return true;
            }

            case Mnemonic.Push when ins.Op0Kind != OpKind.Register || ins.Op0Register.IsGPR():
            {
                int size = -ins.StackPointerIncrement;
                if (ins.Op0Kind == OpKind.Register)
                {
                    op.Reg = Gpr(ins.Op0Register);
                    op.Handler = Sized(size, null, &StackHandlers.PushR<Size16>, &StackHandlers.PushR<Size32>, &StackHandlers.PushR<Size64>);
                }
                else if (ins.Op0Kind == OpKind.Memory)
                {
                    BindMemory(in ins, ref op);
                    op.Handler = Sized(size, null, &StackHandlers.PushM<Size16>, &StackHandlers.PushM<Size32>, &StackHandlers.PushM<Size64>);
                }
                else
                {
                    op.Imm = ins.GetImmediate(0);
                    op.Handler = Sized(size, null, &StackHandlers.PushI<Size16>, &StackHandlers.PushI<Size32>, &StackHandlers.PushI<Size64>);
                }

                return false;
            }

            case Mnemonic.Pop when ins.Op0Kind != OpKind.Register || ins.Op0Register.IsGPR():
            {
                int size = ins.StackPointerIncrement;
                if (ins.Op0Kind == OpKind.Register)
                {
                    op.Reg = Gpr(ins.Op0Register);
                    op.Handler = Sized(size, null, &StackHandlers.PopR<Size16>, &StackHandlers.PopR<Size32>, &StackHandlers.PopR<Size64>);
                }
                else
                {
                    BindMemory(in ins, ref op);
                    op.Handler = Sized(size, null, &StackHandlers.PopM<Size16>, &StackHandlers.PopM<Size32>, &StackHandlers.PopM<Size64>);
                }

                return false;
            }

            case Mnemonic.Pushf:
            case Mnemonic.Pushfd:
            case Mnemonic.Pushfq:
                op.Handler = Sized(-ins.StackPointerIncrement, null, &StackHandlers.Pushf<Size16>, &StackHandlers.Pushf<Size32>, &StackHandlers.Pushf<Size64>);
                return false;
            case Mnemonic.Popf:
            case Mnemonic.Popfd:
            case Mnemonic.Popfq:
                op.Handler = Sized(ins.StackPointerIncrement, null, &StackHandlers.Popf<Size16>, &StackHandlers.Popf<Size32>, &StackHandlers.Popf<Size64>);
                return false;
            case Mnemonic.Pusha:
            case Mnemonic.Pushad:
                op.Handler = Sized(-ins.StackPointerIncrement / 8, null, &StackHandlers.Pusha<Size16>, &StackHandlers.Pusha<Size32>, null);
                return false;
            case Mnemonic.Popa:
            case Mnemonic.Popad:
                op.Handler = Sized(ins.StackPointerIncrement / 8, null, &StackHandlers.Popa<Size16>, &StackHandlers.Popa<Size32>, null);
                return false;
            case Mnemonic.Enter:
                op.Imm = ins.Immediate16;
                op.Aux = ins.Immediate8_2nd;
                op.Handler = ins.Code switch
                {
                    Code.Enterw_imm16_imm8 => &StackHandlers.Enter<Size16>,
                    Code.Enterd_imm16_imm8 => &StackHandlers.Enter<Size32>,
                    _ => &StackHandlers.Enter<Size64>,
                };
                return false;
            case Mnemonic.Leave:
                op.Handler = ins.Code switch
                {
                    Code.Leavew => &StackHandlers.Leave<Size16>,
                    Code.Leaved => &StackHandlers.Leave<Size32>,
                    _ => &StackHandlers.Leave<Size64>,
                };
                return false;
            case Mnemonic.Reservednop when _cpu._amd && ins.Op0Kind == OpKind.Register
                && ins.Code is Code.Reservednop_rm16_r16_0F0D or Code.Reservednop_rm32_r32_0F0D or Code.Reservednop_rm64_r64_0F0D:
                // AMD's 0F 0D is the PREFETCH/PREFETCHW group: a register operand is #UD (Intel: a hint NOP).
                op.Handler = &MiscHandlers.Undefined;
                return true;
            case Mnemonic.Nop:
            case Mnemonic.Pause:
            case Mnemonic.Lfence:
            case Mnemonic.Sfence:
            case Mnemonic.Mfence:
            case Mnemonic.Prefetchnta:
            case Mnemonic.Prefetcht0:
            case Mnemonic.Prefetcht1:
            case Mnemonic.Prefetcht2:
            case Mnemonic.Prefetchw:
            case Mnemonic.Endbr32:
            case Mnemonic.Endbr64:
            case Mnemonic.Rdsspd:
            case Mnemonic.Rdsspq:
            case Mnemonic.Cldemote:
            case Mnemonic.Bndcl:
            case Mnemonic.Bndcu:
            case Mnemonic.Bndcn:
            case Mnemonic.Bndmk:
            case Mnemonic.Bndmov:
            case Mnemonic.Bndldx:
            case Mnemonic.Bndstx:
            case Mnemonic.Reservednop:
                // The hint space (0F 0D, 0F 18-1F): CET, CLDEMOTE and MPX encodings are NOPs on a CPU
                // without (or with disabled) CET/MPX, which is what this model is.
                op.Handler = &MoveHandlers.Nop;
                return false;
            case Mnemonic.Clflush:
                BindMemory(in ins, ref op);
                op.Handler = &MoveHandlers.TouchRead;
                return false;
            case Mnemonic.Cpuid: op.Handler = &MiscHandlers.Cpuid; return false;
            case Mnemonic.Rdtsc: op.Handler = &MiscHandlers.Rdtsc; return false;
            case Mnemonic.Rdtscp: op.Handler = &MiscHandlers.Rdtscp; return false;
            case Mnemonic.Rdrand:
            case Mnemonic.Rdseed:
                op.Reg = Gpr(ins.Op0Register);
                op.Handler = Sized(RegisterSize(ins.Op0Register), null, &MiscHandlers.Rdrand<Size16>, &MiscHandlers.Rdrand<Size32>, &MiscHandlers.Rdrand<Size64>);
                return false;
            case Mnemonic.Xgetbv: op.Handler = &FxHandlers.Xgetbv; return false;
            case Mnemonic.Xsetbv: op.Handler = &FxHandlers.Xsetbv; return false;
            case Mnemonic.Hlt: op.Handler = &MiscHandlers.Hlt; return true;
            case Mnemonic.Vmcall:
            case Mnemonic.Vmmcall:
                // Both, whatever the vendor (KVM patches the other vendor's form; we need not).
                op.Handler = &MiscHandlers.Hypercall;
                return true;
            case Mnemonic.Cli: op.Handler = &MiscHandlers.Cli; return false;
            case Mnemonic.Sti: op.Handler = &MiscHandlers.Sti; return false;
            case Mnemonic.Ud0:
            case Mnemonic.Ud1:
            case Mnemonic.Ud2:
                op.Handler = &MiscHandlers.Undefined;
                return true;
            case Mnemonic.Int3:
                op.Imm = 3;
                op.Handler = &MiscHandlers.SoftwareInterrupt;
                return true;
            case Mnemonic.Int1:
                op.Imm = 1;
                op.Handler = &MiscHandlers.SoftwareInterrupt;
                return true;
            case Mnemonic.Int:
                op.Imm = ins.Immediate8;
                op.Handler = &MiscHandlers.SoftwareInterrupt;
                return true;
            case Mnemonic.Into:
                op.Handler = &MiscHandlers.Into;
                return true;
            default:
                return null;
        }
    }

    private static readonly Dictionary<Code, byte> s_loopCounterSizes = Enum.GetValues<Code>()
        .Where(c => c.Mnemonic() is Mnemonic.Loop or Mnemonic.Loope or Mnemonic.Loopne)
        .ToDictionary(c => c, c => (byte)(c.ToString().EndsWith("_RCX", StringComparison.Ordinal) ? 8 : c.ToString().EndsWith("_ECX", StringComparison.Ordinal) ? 4 : 2));

    /// <summary>The counter LOOPcc decrements (CX, ECX or RCX: the address size) from its Iced code.</summary>
    private static byte LoopCounterSize(Code code) => s_loopCounterSizes[code];

    private static bool IsFarPointer(MemorySize size) => size is MemorySize.SegPtr16 or MemorySize.SegPtr32 or MemorySize.SegPtr64;

    /// <summary>A relative branch: the target as a block offset, truncated to the operand size at run time.</summary>
    private static void BindRelative(in Instruction ins, ref Op op)
    {
        op.Imm = ins.NearBranchTarget;
        op.OpSize = ins.Op0Kind switch
        {
            OpKind.NearBranch16 => 2,
            OpKind.NearBranch32 => 4,
            _ => 8,
        };
    }
}
