using Iced.Intel;
using SharpVisor.Emulator.Mmu;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Emulator.Tests.SystemState;

/// <summary>
/// Regression tests for the defects a bare-metal test suite found (issue 10, part 4): the
/// IA32_MISC_ENABLE write-back, RF in the frames of faults, non-canonical LDT/TSS bases, and the
/// debug machinery (hardware breakpoints, DR6, general detect, single-step across MOV SS and STI).
/// </summary>
public sealed class ConformanceTests
{
    private const ulong Rf = 1UL << 16;
    private const ulong Tf = 1UL << 8;

    [Fact]
    public void MiscEnableTakesBackWhatItReadsAndKeepsWritableBitsButNotTheReadOnlyOnes()
    {
        using var m = new SystemMachine();
        m.InstallHaltHandlers();
        m.Load(SystemMachine.KernelCode, a =>
        {
            a.mov(ecx, 0x1A0);
            a.rdmsr();
            a.wrmsr();                      // the value it read: no #GP
            a.mov(r8, rax);
            a.or(eax, 1 << 18);             // MONITOR enable: kept as written (as KVM)
            a.or(eax, 1 << 7);              // performance monitoring available: write ignored
            a.wrmsr();
            a.rdmsr();
            a.mov(r9, rax);
            a.xor(eax, 1 << 11);            // BTS unavailable is read-only: #GP
            a.wrmsr();
            a.hlt();
        });
        m.EnterLongMode();
        m.RunToHandler(13);
        Assert.Equal(X86Cpu.MiscEnableDefault, m.Cpu.GetRegister(8));
        Assert.Equal(X86Cpu.MiscEnableDefault | (1UL << 18), m.Cpu.GetRegister(9));
    }

    [Theory]
    [InlineData(MmuMode.Shadow)]
    [InlineData(MmuMode.Nested)]
    public void FaultsPushRflagsWithRfSetAndTrapsDoNot(MmuMode mode)
    {
        using var m = new SystemMachine(mode);
        m.InstallHaltHandlers();
        m.Load(SystemMachine.KernelCode, a => a.ud2());
        m.EnterLongMode();
        m.RunToHandler(6);
        Assert.Equal(SystemMachine.KernelCode, m.StackSlot(0));
        Assert.Equal(Rf, m.StackSlot(2) & Rf);
        Assert.Equal(0UL, m.Cpu.Rflags & Rf); // delivery clears RF for the handler

        using var g = new SystemMachine(mode);
        g.InstallHaltHandlers();
        g.Load(SystemMachine.KernelCode, a =>
        {
            a.mov(rax, 0x8000_0000_0000_0000UL);
            a.mov(__qword_ptr[rax], rax);   // non-canonical: #GP(0)
        });
        g.EnterLongMode();
        g.RunToHandler(13);
        Assert.Equal(Rf, g.StackSlot(3) & Rf); // error code, RIP, CS, RFLAGS

        using var t = new SystemMachine(mode);
        t.InstallHaltHandlers();
        t.Load(SystemMachine.KernelCode, a => a.int3());
        t.EnterLongMode();
        t.RunToHandler(3);
        Assert.Equal(0UL, t.StackSlot(2) & Rf); // #BP is a trap
    }

    [Fact]
    public void IretWithRfRestartsTheFaultingInstructionAndRfClearsAfterIt()
    {
        using var m = new SystemMachine();
        m.InstallHaltHandlers();
        ulong handler = 0x18_8000;
        m.Load(handler, a =>
        {
            a.mov(rbx, __qword_ptr[rsp + 16]); // the pushed RFLAGS
            a.add(__qword_ptr[rsp], 2);        // skip the UD2
            a.iretq();
        });
        m.SetGate(6, handler);
        m.Load(SystemMachine.KernelCode, a =>
        {
            a.ud2();
            a.nop();                           // runs with RF = 1, which then clears
            a.hlt();
        });
        m.EnterLongMode();
        m.RunToHalt();
        Assert.Equal(Rf, m.Cpu.GetRegister(3) & Rf);
        Assert.Equal(0UL, m.Cpu.Rflags & Rf);
    }

    [Fact]
    public void LtrAndLldtRefuseNonCanonicalBasesIn16ByteDescriptors()
    {
        using var m = new SystemMachine();
        m.InstallHaltHandlers();

        // 0x60: a TSS whose high half puts bits 63:32 of its base at 0x0000_8000 (non-canonical).
        m.SetGdtEntry(12, 0x67UL | (0x3000UL << 16) | (0x89UL << 40));
        m.SetGdtEntry(13, 0x0000_8000UL);

        // 0x70: an LDT with the same fault.
        m.SetGdtEntry(14, 0xFFFUL | (0x5000UL << 16) | (0x82UL << 40));
        m.SetGdtEntry(15, 0x0000_8000UL);

        m.Load(SystemMachine.KernelCode, a =>
        {
            a.mov(ax, 0x60);
            a.ltr(ax);
        });
        m.EnterLongMode();
        m.RunToHandler(13);
        Assert.Equal(0x60UL, m.StackSlot(0));
        Assert.Equal(0x89UL, m.Memory.Read<ulong>(SystemMachine.GdtAddress + (12 * 8)) >> 40 & 0xFF); // not marked busy

        m.Load(SystemMachine.KernelCode, a =>
        {
            a.mov(ax, 0x70);
            a.lldt(ax);
        });
        m.EnterLongMode();
        m.RunToHandler(13);
        Assert.Equal(0x70UL, m.StackSlot(0));
    }

    [Fact]
    public void WrmsrRefusesNonCanonicalSegmentBases()
    {
        foreach (uint msr in new uint[] { X86Cpu.MsrFsBase, X86Cpu.MsrGsBase, X86Cpu.MsrKernelGsBase })
        {
            using var m = new SystemMachine();
            m.InstallHaltHandlers();
            m.Load(SystemMachine.KernelCode, a =>
            {
                a.mov(ecx, msr);
                a.xor(eax, eax);
                a.mov(edx, 0x0000_8000);        // base 0x0000_8000_0000_0000
                a.wrmsr();
                a.hlt();
            });
            m.EnterLongMode();
            m.RunToHandler(13);
        }
    }

    [Fact]
    public void AnInstructionBreakpointIsAFaultAndRfLetsTheHandlerResume()
    {
        using var m = new SystemMachine();
        m.InstallHaltHandlers();
        ulong handler = 0x18_8000;
        m.Load(handler, a =>
        {
            a.inc(r12);                             // count #DBs
            a.mov(r13, dr6);
            a.or(__qword_ptr[rsp + 16], (int)Rf);   // resume: no second #DB at the same instruction
            a.iretq();
        });
        m.SetGate(1, handler);
        ulong target = 0;
        ulong end = m.Load(SystemMachine.KernelCode, a =>
        {
            a.mov(rax, SystemMachine.KernelCode + 0x40);
            a.mov(dr1, rax);
            a.mov(rax, 0b1100);                     // L1, G1; R/W1 = 00 (execute), LEN1 = 0
            a.mov(dr7, rax);
            a.jmp(SystemMachine.KernelCode + 0x40);
        });
        Assert.True(end < SystemMachine.KernelCode + 0x40);
        target = m.Load(SystemMachine.KernelCode + 0x40, a =>
        {
            a.inc(r14);
            a.hlt();
        });
        m.EnterLongMode();
        m.RunToHalt();
        Assert.Equal(target, m.Cpu.Rip);
        Assert.Equal(1UL, m.Cpu.GetRegister(12));   // exactly one #DB
        Assert.Equal(1UL, m.Cpu.GetRegister(14));   // the instruction ran once
        Assert.Equal(0b10UL, m.Cpu.GetRegister(13) & 0xF); // B1
    }

    [Fact]
    public void DataBreakpointsTrapAfterTheAccessingInstructionWithTheirBBits()
    {
        using var m = new SystemMachine();
        m.InstallHaltHandlers();
        ulong data = SystemMachine.UserDataArea + 0x100;
        ulong end = m.Load(SystemMachine.KernelCode, a =>
        {
            a.mov(rax, data + 4);
            a.mov(dr0, rax);                        // DR0: write, 4 bytes at data + 4
            a.mov(rax, data + 16);
            a.mov(dr3, rax);                        // DR3: read/write, 8 bytes at data + 16
            a.mov(rax, 0b11L | (0b11L << 6) | (0b1101L << 16) | (0b1011L << 28));
            a.mov(dr7, rax);
            a.mov(rbx, data);
            a.mov(eax, __dword_ptr[rbx + 4]);       // a read of DR0's bytes: not a hit
            a.mov(__word_ptr[rbx], ax);             // elsewhere on the page: not a hit
            a.mov(rax, __qword_ptr[rbx + 20]);      // a read inside DR3's range: hit, trap after
            a.nop();
            a.hlt();
        });
        m.EnterLongMode();
        m.RunToHandler(1);
        Assert.Equal(end - 2, m.StackSlot(0));      // a trap: RIP after the load (at the NOP)
        Assert.Equal(0b1000UL, m.Cpu._dr[6] & 0xF); // B3

        // An RMW store into DR0's dword through a misaligned qword write is a hit too.
        using var w = new SystemMachine();
        w.InstallHaltHandlers();
        w.Load(SystemMachine.KernelCode, a =>
        {
            a.mov(rax, data + 4);
            a.mov(dr0, rax);
            a.mov(rax, 0b11L | (0b1101L << 16));
            a.mov(dr7, rax);
            a.mov(rbx, data);
            a.add(__qword_ptr[rbx + 1], 1);
            a.hlt();
        });
        w.EnterLongMode();
        w.RunToHandler(1);
        Assert.Equal(0b1UL, w.Cpu._dr[6] & 0xF);
        Assert.Equal(1UL, w.Memory.Read<ulong>(data + 1));
    }

    [Fact]
    public void GeneralDetectFaultsOnADebugRegisterAccessWithBd()
    {
        using var m = new SystemMachine();
        m.InstallHaltHandlers();
        ulong end = m.Load(SystemMachine.KernelCode, a =>
        {
            a.mov(rax, 1L << 13);                   // DR7.GD
            a.mov(dr7, rax);
            a.mov(rbx, dr0);                        // #DB fault here
            a.hlt();
        });
        m.EnterLongMode();
        m.RunToHandler(1);
        Assert.Equal(end - 4, m.StackSlot(0));      // a fault: RIP at the MOV (3 bytes) before HLT
        Assert.Equal(1UL << 13, m.Cpu._dr[6] & (1UL << 13));
        Assert.Equal(0UL, m.Cpu._dr[7] & (1UL << 13)); // GD cleared for the handler
        Assert.Equal(Rf, m.StackSlot(2) & Rf);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SingleStepOverMovSsOrPopSsTrapsOnlyAfterTheNextInstruction(bool pop)
    {
        using var m = new SystemMachine();
        m.InstallHaltHandlers32();
        ulong movSs = m.Load(SystemMachine.KernelCode, a =>
        {
            a.mov(eax, SystemMachine.KernelData);
            a.push(eax);
            a.pushfd();
            a.or(__dword_ptr[esp], 0x100);
            a.popfd();                              // TF on
            a.nop();                                // #DB after this one
        }, bitness: 32);
        m.Load(SystemMachine.HaltHandler(1), a => a.iretd(), bitness: 32); // back with TF still set
        ulong next = m.Load(movSs, a =>
        {
            if (pop)
            {
                a.pop(ss);
            }
            else
            {
                a.mov(ss, ax);
            }
        }, bitness: 32);
        ulong last = m.Load(next, a => a.inc(edi), bitness: 32);
        m.Load(last, a => a.hlt(), bitness: 32);
        ulong secondHandler = 0x18_9000;
        m.Load(secondHandler, a => a.hlt(), bitness: 32);
        m.EnterProtectedMode32(SystemMachine.KernelCode);
        m.Cpu.AddBreakpoint(movSs);
        CpuRunResult first = m.Cpu.Run(1000);
        m.Cpu.ClearBreakpoints();
        Assert.Equal(CpuStopReason.Breakpoint, first.Reason);
        Assert.Equal(movSs, m.Cpu.Rip);
        m.SetGate32(1, secondHandler);
        m.RunToHalt();
        Assert.Equal(secondHandler + 1, m.Cpu.Rip);
        ulong stackTop = m.Cpu.GetRegister(4);
        Assert.Equal((uint)last, m.Memory.Read<uint>(stackTop)); // not after MOV/POP SS: after the instruction following it
        Assert.Equal(1UL, m.Cpu.GetRegister(7));
        Assert.Equal(1UL << 14, m.Cpu._dr[6] & (1UL << 14));
    }

    [Fact]
    public void AnNmiLatchedInAnStiShadowIsTakenWhenTheHltBegins()
    {
        using var m = new SystemMachine();
        m.InstallHaltHandlers();
        ulong hlt = m.Load(SystemMachine.KernelCode, a => a.sti());
        m.Load(hlt, a => a.hlt());
        m.EnterLongMode();
        m.Cpu.AddBreakpoint(hlt);
        Assert.Equal(CpuStopReason.Breakpoint, m.Cpu.Run(100).Reason);
        m.Cpu.ClearBreakpoints();
        m.Cpu.DeliverNmi();                         // in the STI shadow: latched
        Assert.False(m.Cpu.IsNmiBlocked);
        m.RunToHandler(2);
        Assert.Equal(hlt + 1, m.StackSlot(0));      // taken after the HLT began: returns past it
    }

    [Fact]
    public void SingleStepAfterStiTrapsRightAfterItAndPendingInterruptsWait()
    {
        using var m = new SystemMachine();
        m.InstallHaltHandlers();
        ulong end = m.Load(SystemMachine.KernelCode, a =>
        {
            a.pushfq();
            a.or(__qword_ptr[rsp], 0x100);
            a.popfq();
            a.sti();                                // traps after STI despite its interrupt shadow
            a.nop();
            a.hlt();
        });
        m.EnterLongMode();
        m.Cpu.InterruptWindowRequested = true;      // an interrupt is pending: the #DB comes first
        m.RunToHandler(1);
        Assert.Equal(end - 2, m.StackSlot(0));
        Assert.Equal(0x200UL, m.StackSlot(2) & 0x200);
    }
}
