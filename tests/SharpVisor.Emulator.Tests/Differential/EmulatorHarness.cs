using Iced.Intel;
using SharpVisor.Machine;
using SharpVisor.Memory;

namespace SharpVisor.Emulator.Tests.Differential;

/// <summary>
/// The emulator side of the differential suite: a CPU in 64-bit user mode (CPL 3) over the
/// same address layout as the native harness, running a case until it reaches the end of its
/// code, faults, or exceeds an instruction budget (a "timeout").
/// </summary>
internal sealed class EmulatorHarness : IDisposable
{
    private const long InstructionBudget = 20_000;

    private readonly GuestMemory _memory;
    private readonly X86Cpu _cpu;
    private readonly X86Cpu _stepper;

    public EmulatorHarness(ulong exitSlotValue, ExecutionTier? tier = null)
    {
        _memory = new GuestMemory();
        _memory.AddRegion(DiffCase.DataBase, DiffCase.DataSize, name: "difftest-data");
        _memory.AddRegion(DiffCase.CodeBase, DiffCase.CodePageSize, name: "difftest-code");
        _memory.AddRegion(DiffCase.ExitSlot, 0x1000, readOnly: true, name: "difftest-exit");
        _memory.Write(DiffCase.ExitSlot, exitSlotValue);
        // The host CPU is the reference: the emulator runs the profile of the host's vendor.
        _cpu = new X86Cpu(new PhysicalMemory(_memory), Model, new UserModeMmu(_memory));
        _stepper = new X86Cpu(new PhysicalMemory(_memory), Model, new UserModeMmu(_memory));
        _cpu.Tier = tier ?? _cpu.Tier;
        _stepper.Tier = ExecutionTier.Interpreter; // single steps: the interpreter's path in any case
    }

    /// <summary>Instructions the case-running CPU retired in tier-1 code so far.</summary>
    public long TranslatedInstructions => _cpu.TranslatedInstructions;

    /// <summary>The CPU model of the host's vendor (<see cref="HostCpu.Vendor"/>) the cases run on.</summary>
    public static CpuModel Model { get; } = CpuModel.ForVendor(HostCpu.Vendor);

    public List<string> Diagnostics { get; } = new();

    /// <summary>Mnemonics that read a flag an earlier instruction left undefined (why cases were skipped).</summary>
    public Dictionary<string, int> TaintReasons { get; } = new();

    /// <summary>Runs a case; <paramref name="undefinedFlags"/> gets the flags left undefined by the executed path, or null when an instruction read an undefined flag.</summary>
    public DiffResult Run(DiffCase c, out ulong? undefinedFlags)
    {
        // First pass, one instruction at a time, to learn the executed path's undefined flags.
        Prepare(_stepper, c);
        undefinedFlags = TraceUndefinedFlags(c);

        Prepare(_cpu, c);
        CpuRunResult run = c.Code.Length == 0 ? new CpuRunResult(CpuStopReason.Breakpoint) : _cpu.Run(InstructionBudget);
        return Capture(_cpu, run, c);
    }

    private void Prepare(X86Cpu cpu, DiffCase c)
    {
        _memory.Write(DiffCase.DataBase, c.InitialData());
        _memory.Write(DiffCase.CodeBase, c.CodePage());
        cpu.InvalidateCode(DiffCase.CodeBase, DiffCase.CodePageSize);
        cpu.SetState(UserState(c));
        cpu.Fxrstor(c.Fx);
        cpu.Xcr0 = CpuModel.SupportedXcr0;
        cpu.ClearBreakpoints();
        cpu.AddBreakpoint(DiffCase.CodeBase + (ulong)c.Code.Length);
        cpu.Diagnostics = Diagnostics.Add;
    }

    private static VcpuState UserState(DiffCase c)
    {
        var s = new VcpuState
        {
            Rax = c.Gpr[0], Rcx = c.Gpr[1], Rdx = c.Gpr[2], Rbx = c.Gpr[3],
            Rsp = c.Gpr[4], Rbp = c.Gpr[5], Rsi = c.Gpr[6], Rdi = c.Gpr[7],
            R8 = c.Gpr[8], R9 = c.Gpr[9], R10 = c.Gpr[10], R11 = c.Gpr[11],
            R12 = c.Gpr[12], R13 = c.Gpr[13], R14 = c.Gpr[14], R15 = c.Gpr[15],
            Rip = DiffCase.CodeBase,
            Rflags = c.Rflags,
            Cr0 = VcpuState.Cr0ProtectionEnable | VcpuState.Cr0MonitorCoprocessor | VcpuState.Cr0ExtensionType
                | VcpuState.Cr0NumericError | VcpuState.Cr0WriteProtect | VcpuState.Cr0Paging,
            Cr4 = VcpuState.Cr4Pae | VcpuState.Cr4Pge | VcpuState.Cr4OsFxsr | VcpuState.Cr4OsXmmExcpt | (1UL << 18),
            Efer = VcpuState.EferSyscall | VcpuState.EferLongModeEnable | VcpuState.EferLongModeActive | VcpuState.EferNoExecute,
            Cs = SegmentRegister.Flat(0x33, 0xB, longMode: true, defaultBig: false) with { Dpl = 3 },
            Ss = SegmentRegister.Flat(0x2B, 0x3, false, true) with { Dpl = 3 },
            Ds = SegmentRegister.Flat(0, 0x3, false, true) with { Dpl = 3 },
            Es = SegmentRegister.Flat(0, 0x3, false, true) with { Dpl = 3 },
            Fs = SegmentRegister.Flat(0, 0x3, false, true) with { Dpl = 3 },
            Gs = SegmentRegister.Flat(0, 0x3, false, true) with { Dpl = 3, Base = DiffCase.DataBase },
        };
        return s;
    }

    private ulong? TraceUndefinedFlags(DiffCase c)
    {
        ulong undefined = 0;
        var decoder = Decoder.Create(64, new ByteArrayCodeReader(c.CodePage()), DiffCase.CodeBase);
        for (long n = 0; n < InstructionBudget; n++)
        {
            ulong rip = _stepper.Rip;
            if (rip - DiffCase.CodeBase >= (ulong)c.Code.Length)
            {
                break;
            }

            decoder.IP = rip;
            var reader = new ByteArrayCodeReader(c.CodePage(), (int)(rip - DiffCase.CodeBase), DiffCase.CodePageSize - (int)(rip - DiffCase.CodeBase));
            Instruction ins = Decoder.Create(64, reader, rip).Decode();
            ulong rotateOverflow = RotateOverflowUndefined(in ins);
            CpuRunResult step = _stepper.Run(1);
            if (step.Reason == CpuStopReason.Exception)
            {
                break;
            }

            // Only RFLAGS matter here: x87 condition codes (which Iced also tracks) are compared exactly.
            if ((ToRflagsBits((ulong)ins.RflagsRead) & ToRflagsBits(undefined)) != 0)
            {
                TaintReasons[ins.Mnemonic.ToString()] = TaintReasons.GetValueOrDefault(ins.Mnemonic.ToString()) + 1;
                return null;
            }

            undefined = (undefined & ~(ulong)ins.RflagsModified) | (ulong)ins.RflagsUndefined | rotateOverflow;
        }

        return ToRflagsBits(undefined);
    }

    /// <summary>
    /// Both manuals define OF of ROL/ROR/RCL/RCR only for a masked count of 1 ("The OF flag is defined
    /// only for the 1-bit rotates; it is undefined in all other cases", SDM; the APM alike), and a
    /// masked count of 0 affects no flag. Iced counts an RCL/RCR whose masked count is a multiple of
    /// 9 or 17 as a zero rotate; the manuals do not: OF is undefined there too (in Iced's bit order).
    /// </summary>
    private ulong RotateOverflowUndefined(in Instruction ins)
    {
        if (ins.Mnemonic is not (Mnemonic.Rol or Mnemonic.Ror or Mnemonic.Rcl or Mnemonic.Rcr) || ins.OpCount < 2)
        {
            return 0;
        }

        ulong raw = ins.Op1Kind switch
        {
            OpKind.Immediate8 => ins.Immediate8,
            OpKind.Register => _stepper.GetRegister(1),
            _ => 1,
        };
        ulong masked = raw & (ins.Op0Kind == OpKind.Register && ins.Op0Register.GetSize() == 8 || ins.Op0Kind == OpKind.Memory && ins.MemorySize.GetSize() == 8 ? 0x3FUL : 0x1FUL);
        return masked > 1 ? (ulong)Iced.Intel.RflagsBits.OF : 0;
    }

    /// <summary>Iced's RflagsBits use their own bit order; map the six status flags to RFLAGS positions.</summary>
    public static ulong ToRflagsBits(ulong iced)
    {
        var f = (Iced.Intel.RflagsBits)iced;
        ulong r = 0;
        r |= (f & Iced.Intel.RflagsBits.CF) != 0 ? SharpVisor.Emulator.RflagsBits.Carry : 0;
        r |= (f & Iced.Intel.RflagsBits.PF) != 0 ? SharpVisor.Emulator.RflagsBits.Parity : 0;
        r |= (f & Iced.Intel.RflagsBits.AF) != 0 ? SharpVisor.Emulator.RflagsBits.Adjust : 0;
        r |= (f & Iced.Intel.RflagsBits.ZF) != 0 ? SharpVisor.Emulator.RflagsBits.Zero : 0;
        r |= (f & Iced.Intel.RflagsBits.SF) != 0 ? SharpVisor.Emulator.RflagsBits.Sign : 0;
        r |= (f & Iced.Intel.RflagsBits.OF) != 0 ? SharpVisor.Emulator.RflagsBits.Overflow : 0;
        return r;
    }

    private DiffResult Capture(X86Cpu cpu, CpuRunResult run, DiffCase c)
    {
        var r = new DiffResult();
        for (int i = 0; i < 16; i++)
        {
            r.Gpr[i] = cpu.GetRegister(i);
        }

        r.Rip = cpu.Rip;
        r.Rflags = cpu.Rflags;
        r.Fx = new byte[512];
        cpu.Fxsave(r.Fx);
        r.Data = _memory.GetSpan(DiffCase.DataBase, DiffCase.DataSize).ToArray();
        switch (run.Reason)
        {
            case CpuStopReason.Breakpoint:
                r.Outcome = DiffOutcome.Completed;
                break;
            case CpuStopReason.Exception:
            {
                CpuException e = run.Exception!;
                r.Outcome = DiffOutcome.Fault;
                if (e.IsSoftwareInterrupt && e.Vector is not (3 or 4))
                {
                    // INT n from user mode hits a DPL-0 gate (Linux opens only 3, 4 and 0x80):
                    // #GP with the IDT vector as error code.
                    r.Vector = 13;
                    r.ErrorCode = ((ulong)e.Vector << 3) | 2;
                    r.Rip = cpu.Rip - (ulong)e.InstructionLength;
                }
                else
                {
                    r.Vector = e.Vector;
                    r.ErrorCode = e.ErrorCode ?? 0;
                    r.Cr2 = e.FaultAddress;
                }

                break;
            }

            default:
                r.Outcome = DiffOutcome.Timeout;
                break;
        }

        return r;
    }

    public void Dispose() => _memory.Dispose();
}
