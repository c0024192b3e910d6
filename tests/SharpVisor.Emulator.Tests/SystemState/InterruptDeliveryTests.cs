using Iced.Intel;
using SharpVisor.Emulator.Mmu;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Emulator.Tests.SystemState;

public sealed class InterruptDeliveryTests
{
    [Theory]
    [InlineData(MmuMode.Shadow)]
    [InlineData(MmuMode.Nested)]
    public void UserPageFaultSwitchesToTheKernelStackWithExactErrorCodeAndCr2(MmuMode mode)
    {
        using var m = new SystemMachine(mode);
        m.InstallHaltHandlers();
        ulong missing = SystemMachine.UserDataArea + 0x5000;
        m.UnmapPage(missing);
        m.Load(SystemMachine.UserCode, a =>
        {
            a.mov(rbx, missing + 8);           // 10 bytes
            a.mov(__qword_ptr[rbx], rax);
            a.hlt();
        });
        m.EnterLongMode();
        m.Load(SystemMachine.KernelCode, a =>
        {
            // IRETQ to CPL 3.
            a.push(SystemMachine.UserData);
            a.push((int)SystemMachine.UserStackTop);
            a.push(0x202);
            a.push(SystemMachine.UserCode64);
            a.push((int)SystemMachine.UserCode);
            a.iretq();
        });

        m.RunToHandler(14);
        Assert.Equal(0, m.Cpu.CurrentPrivilegeLevel);
        Assert.Equal(missing + 8, m.Cpu.Cr2);
        Assert.Equal(0x6UL, m.StackSlot(0));                     // not present, write, user
        Assert.Equal(SystemMachine.UserCode + 10, m.StackSlot(1)); // RIP of the store
        Assert.Equal((ulong)SystemMachine.UserCode64, m.StackSlot(2));
        Assert.Equal(0x202UL, m.StackSlot(3) & 0x202);
        Assert.Equal(SystemMachine.UserStackTop, m.StackSlot(4));
        Assert.Equal((ulong)SystemMachine.UserData, m.StackSlot(5));
        Assert.Equal(SystemMachine.KernelStackTop - (6 * 8), m.Cpu.GetRegister(4));
        Assert.False(m.Cpu.CanAcceptInterrupt); // an interrupt gate clears IF
    }

    [Fact]
    public void IstStackIsUsedEvenWithoutAPrivilegeChangeAndIsAlignedTo16Bytes()
    {
        using var m = new SystemMachine();
        m.InstallHaltHandlers();
        m.SetGate(3, SystemMachine.HaltHandler(3), dpl: 3, ist: 1, trap: true);
        ulong end = m.Load(SystemMachine.KernelCode, a =>
        {
            a.mov(rsp, 0x8_0008);  // misaligned kernel stack
            a.int3();
            a.hlt();
        });
        m.EnterLongMode();
        m.RunToHandler(3);
        Assert.Equal(SystemMachine.IstStackTop - (5 * 8), m.Cpu.GetRegister(4));
        Assert.Equal(end - 1, m.StackSlot(0)); // INT3 is a trap: RIP after it
        Assert.Equal(0x8_0008UL, m.StackSlot(3));
        Assert.Equal((ulong)SystemMachine.KernelData, m.StackSlot(4));
    }

    [Fact]
    public void TrapGateKeepsInterruptsEnabledAndIretqReturns()
    {
        using var m = new SystemMachine();
        m.InstallHaltHandlers();
        ulong handler = 0x18_8000;
        m.Load(handler, a =>
        {
            a.pushfq();
            a.pop(rdx);
            a.iretq();
        });
        m.SetGate(0x80, handler, dpl: 3, trap: true);
        m.Load(SystemMachine.UserCode, a =>
        {
            a.mov(eax, 1);
            a.@int(0x80);
            a.mov(ebx, 2);
            a.ud2();
        });
        m.EnterUserMode();
        m.RunToHandler(6);
        Assert.Equal(0x200UL, m.Cpu.GetRegister(2) & 0x200); // IF stayed set in the trap handler
        Assert.Equal(2UL, m.Cpu.GetRegister(3));
        Assert.Equal((ulong)SystemMachine.UserCode64, m.StackSlot(1)); // #UD pushes no error code
    }

    [Fact]
    public void IntToAKernelOnlyGateFromUserModeIsAGeneralProtectionFaultNamingTheVector()
    {
        using var m = new SystemMachine();
        m.InstallHaltHandlers();
        m.Load(SystemMachine.UserCode, a => a.@int(0x41));
        m.EnterUserMode();
        m.RunToHandler(13);
        Assert.Equal((0x41UL << 3) | 2, m.StackSlot(0));
        Assert.Equal(SystemMachine.UserCode, m.StackSlot(1)); // the INT instruction itself
    }

    [Fact]
    public void ExternalInterruptWakesHaltAndReturnsAfterIt()
    {
        using var m = new SystemMachine();
        m.InstallHaltHandlers();
        ulong handler = 0x18_8000;
        m.Load(handler, a =>
        {
            a.mov(r8, 0x77);
            a.iretq();
        });
        m.SetGate(0x30, handler);
        ulong afterHlt = m.Load(SystemMachine.KernelCode, a =>
        {
            a.sti();
            a.hlt();
        });
        m.Load(afterHlt, a =>
        {
            a.mov(r9, 0x99);
            a.hlt();
        });
        m.EnterLongMode();

        Assert.Equal(CpuStopReason.Halted, m.Cpu.Run(1000).Reason);
        Assert.True(m.Cpu.IsHalted);
        Assert.Equal(CpuStopReason.Halted, m.Cpu.Run(1000).Reason); // stays halted without an event
        Assert.True(m.Cpu.CanAcceptInterrupt);

        m.Cpu.DeliverInterrupt(0x30);
        Assert.False(m.Cpu.IsHalted);
        Assert.Equal(handler, m.Cpu.Rip);
        Assert.Equal(afterHlt, m.StackSlot(0)); // the frame returns past the HLT
        m.RunToHalt();
        Assert.Equal(0x77UL, m.Cpu.GetRegister(8));
        Assert.Equal(0x99UL, m.Cpu.GetRegister(9));
    }

    [Fact]
    public void StiShadowHoldsInterruptsForOneInstruction()
    {
        using var m = new SystemMachine();
        m.Load(SystemMachine.KernelCode, a =>
        {
            a.sti();
            a.nop();
            a.nop();
            a.hlt();
        });
        m.EnterLongMode();
        Assert.False(m.Cpu.CanAcceptInterrupt); // IF = 0
        m.Cpu.Run(1);                          // STI
        Assert.False(m.Cpu.CanAcceptInterrupt); // in its shadow
        Assert.Throws<InvalidOperationException>(() => m.Cpu.DeliverInterrupt(0x30));
        m.Cpu.Run(1);                          // the instruction after STI
        Assert.True(m.Cpu.CanAcceptInterrupt);
    }

    [Fact]
    public void MovSsShadowHoldsInterruptsForOneInstruction()
    {
        using var m = new SystemMachine();
        m.Load(SystemMachine.KernelCode, a =>
        {
            a.mov(eax, SystemMachine.KernelData);
            a.mov(ss, ax);
            a.nop();
            a.hlt();
        });
        m.EnterLongMode();
        var state = m.Cpu.GetState();
        state.Rflags |= 0x200;
        m.Cpu.SetState(state);
        m.Cpu.Run(2);
        Assert.False(m.Cpu.CanAcceptInterrupt);
        m.Cpu.Run(1);
        Assert.True(m.Cpu.CanAcceptInterrupt);
    }

    [Fact]
    public void InterruptWindowRequestStopsRightAfterTheStiShadow()
    {
        using var m = new SystemMachine();
        m.Load(SystemMachine.KernelCode, a =>
        {
            Label loop = a.CreateLabel();
            Label end = a.CreateLabel();
            a.mov(ecx, 1000);
            a.Label(ref loop);
            a.dec(ecx);
            a.jnz(loop);
            a.sti();
            a.mov(ebx, 2);
            a.Label(ref end);
            a.mov(edx, 3);
            a.hlt();
        });
        m.EnterLongMode();
        m.Cpu.InterruptWindowRequested = true;
        CpuRunResult result = m.Cpu.Run(1_000_000);
        Assert.Equal(CpuStopReason.InterruptWindow, result.Reason);
        Assert.Equal(2UL, m.Cpu.GetRegister(3)); // the shadowed instruction ran
        Assert.Equal(0UL, m.Cpu.GetRegister(2)); // the next one did not
        Assert.True(m.Cpu.CanAcceptInterrupt);
    }

    [Fact]
    public void NmiIsBlockedUntilIretAndOneIsLatched()
    {
        using var m = new SystemMachine();
        m.InstallHaltHandlers();
        ulong counter = SystemMachine.UserDataArea;
        ulong handler = 0x18_8000;
        m.Load(handler, a =>
        {
            a.mov(rax, counter);
            a.inc(__qword_ptr[rax]);
            a.iretq();
        });
        m.SetGate(2, handler);
        m.Load(SystemMachine.KernelCode, a =>
        {
            a.nop();
            a.nop();
            a.hlt();
        });
        m.EnterLongMode(); // IF = 0: NMIs are not maskable

        m.Cpu.DeliverNmi();
        Assert.True(m.Cpu.IsNmiBlocked);
        Assert.Equal(handler, m.Cpu.Rip);
        ulong rsp = m.Cpu.GetRegister(4);
        m.Cpu.DeliverNmi();                       // blocked: latched, nothing pushed
        m.Cpu.DeliverNmi();                       // only one is latched
        Assert.Equal(handler, m.Cpu.Rip);
        Assert.Equal(rsp, m.Cpu.GetRegister(4));

        m.RunToHalt();
        Assert.Equal(2UL, m.Memory.Read<ulong>(counter));
        Assert.False(m.Cpu.IsNmiBlocked);
        Assert.Equal(SystemMachine.KernelStackTop, m.Cpu.GetRegister(4));
    }

    [Fact]
    public void ContributoryFaultWhileDeliveringAContributoryFaultIsADoubleFault()
    {
        using var m = new SystemMachine();
        m.InstallHaltHandlers();
        m.SetGate(13, SystemMachine.HaltHandler(13), present: false);  // #GP's gate is not present: #NP
        m.Load(SystemMachine.KernelCode, a =>
        {
            a.mov(eax, 0x1234);
            a.mov(ds, ax); // #GP(0x1234): beyond the GDT
        });
        m.EnterLongMode();
        m.RunToHandler(8);
        Assert.Equal(0UL, m.StackSlot(0));                     // #DF pushes 0
        Assert.Equal(SystemMachine.KernelCode + 5, m.StackSlot(1)); // at the faulting instruction
    }

    [Fact]
    public void PageFaultWhileDeliveringAPageFaultIsADoubleFault()
    {
        using var m = new SystemMachine();
        m.InstallHaltHandlers();
        m.SetGate(8, SystemMachine.HaltHandler(8), ist: 1);
        m.UnmapPage(SystemMachine.KernelStackTop - 8);          // the #PF frame cannot be pushed
        m.Load(SystemMachine.KernelCode, a =>
        {
            a.mov(rax, __qword_ptr[0x3F_F000]);
            a.hlt();
        });
        m.UnmapPage(0x3F_F000);
        m.EnterLongMode();
        m.RunToHandler(8);
        Assert.InRange(m.Cpu.Cr2, SystemMachine.KernelStackTop - (6 * 8), SystemMachine.KernelStackTop - 8);
        Assert.Equal(SystemMachine.IstStackTop - (6 * 8), m.Cpu.GetRegister(4));
    }

    [Fact]
    public void FaultWhileDeliveringADoubleFaultShutsTheProcessorDown()
    {
        using var m = new SystemMachine();
        m.InstallHaltHandlers();
        m.SetGate(13, SystemMachine.HaltHandler(13), present: false);
        m.SetGate(8, SystemMachine.HaltHandler(8), present: false);
        m.Load(SystemMachine.KernelCode, a =>
        {
            a.mov(eax, 0x1234);
            a.mov(ds, ax);
        });
        m.EnterLongMode();
        CpuRunResult result = m.Cpu.Run(1000);
        Assert.Equal(CpuStopReason.TripleFault, result.Reason);
        Assert.Contains("triple fault", result.Detail);
        Assert.Contains("#DF", result.Detail);
        Assert.NotNull(m.Cpu.ShutdownReason);
        Assert.Equal(CpuStopReason.TripleFault, m.Cpu.Run(1000).Reason); // stays shut down
    }

    [Fact]
    public void AHandlerThatFaultsOnItsFirstFetchStillLetsRunReturn()
    {
        using var m = new SystemMachine();
        ulong missing = 0x3E_0000;
        m.UnmapPage(missing);
        m.SetGate(14, missing, ist: 1);        // the #PF handler itself is not mapped
        m.Load(SystemMachine.KernelCode, a => a.jmp(missing));
        m.EnterLongMode();
        CpuRunResult result = m.Cpu.Run(10_000);
        Assert.Equal(CpuStopReason.InstructionLimit, result.Reason);
        Assert.Equal(missing, m.Cpu.Cr2);
        Assert.Equal(missing, m.Cpu.Rip);
    }

    [Fact]
    public void InitWaitsForStartupThenRunsRealModeCodeAtTheVector()
    {
        using var m = new SystemMachine();
        m.Load(0x9_A000, a =>
        {
            a.mov(ax, 0x1234);
            a.mov(bx, cs);
            a.hlt();
        }, bitness: 16);
        m.EnterLongMode();
        m.Cpu.EnterInitState();
        Assert.True(m.Cpu.IsWaitingForStartup);
        Assert.False(m.Cpu.CanAcceptInterrupt);
        Assert.Equal(CpuStopReason.WaitingForStartup, m.Cpu.Run(1000).Reason);
        Assert.Equal(CpuMode.Real, m.Cpu.Mode);

        m.Cpu.DeliverStartup(0x9A);
        Assert.False(m.Cpu.IsWaitingForStartup);
        m.RunToHalt();
        Assert.Equal(0x1234UL, m.Cpu.GetRegister(0) & 0xFFFF);
        Assert.Equal(0x9A00UL, m.Cpu.GetRegister(3) & 0xFFFF);
        m.Cpu.DeliverStartup(0x10);               // not waiting: ignored
        Assert.Equal(CpuMode.Real, m.Cpu.Mode);
    }

    [Fact]
    public void TrapFlagSingleStepsAfterTheInstructionFollowingPopf()
    {
        using var m = new SystemMachine();
        m.InstallHaltHandlers();
        ulong firstNop = 0;
        ulong end = m.Load(SystemMachine.UserCode, a =>
        {
            a.pushfq();
            a.or(__qword_ptr[rsp], 0x100);
            a.popfq();                 // TF was clear when POPF began: no trap after it
            a.nop();                   // traps after this one
            a.nop();
            a.hlt();
        });
        firstNop = end - 3;
        m.EnterUserMode();
        m.RunToHandler(1);
        Assert.Equal(firstNop + 1, m.StackSlot(0));           // #DB is a trap: RIP after the NOP
        Assert.Equal(0x100UL, m.StackSlot(2) & 0x100);        // the frame still has TF set
        Assert.Equal(0UL, m.Cpu.Rflags & 0x100);              // the handler runs without it
    }

    [Fact]
    public void RequestStopFromAnotherThreadEndsAnEndlessLoop()
    {
        using var m = new SystemMachine();
        m.Load(SystemMachine.KernelCode, a =>
        {
            Label loop = a.CreateLabel();
            a.Label(ref loop);
            a.inc(rax);
            a.jmp(loop);
        });
        m.EnterLongMode();
        using var timer = new Timer(_ => m.Cpu.RequestStop(), null, 50, Timeout.Infinite);
        var clock = global::System.Diagnostics.Stopwatch.StartNew();
        CpuRunResult result = m.Cpu.Run();
        Assert.Equal(CpuStopReason.StopRequested, result.Reason);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10));
        Assert.True(m.Cpu.GetRegister(0) > 0);
    }
}
