using System.Globalization;
using Iced.Intel;
using SharpVisor.Emulator.Accelerator;
using SharpVisor.Emulator.Mmu;
using SharpVisor.Interop;
using SharpVisor.Machine;
using SharpVisor.TestSupport;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Emulator.Tests.Accelerator;

/// <summary>
/// The software accelerator's vCPU as the Machine layer sees it: I/O dispatch to the buses and
/// its counters, the local APIC page, HLT, kicks and stops, and guests that go wrong. None of
/// these needs interrupt delivery (see <see cref="EmulatorInterruptDeliveryTests"/>).
/// </summary>
public sealed class EmulatorVcpuTests
{
    private const ulong DeviceAddress = 0xD000_0000;
    private const ulong UnclaimedAddress = 0xD800_0000;

    [Theory]
    [InlineData(MmuMode.Shadow)]
    [InlineData(MmuMode.Nested)]
    public void PortIoReachesTheMachineBusAndIsCounted(MmuMode mode)
    {
        using EmulatorTestMachine machine = EmulatorTestMachine.LongMode(a =>
        {
            EmulatorTestMachine.EmitOutputString(a, "hi");
            EmulatorTestMachine.EmitDebugExit(a, 0x21);
        }, mmuMode: mode);

        VirtualMachineRunner runner = machine.Run();

        Assert.Null(runner.FailureExit);
        Assert.Equal(MachineStopReason.DebugExit, machine.Vm.Control.StopReason);
        Assert.Equal((0x21 << 1) | 1, machine.Vm.Control.ExitStatus);
        Assert.Equal("hi", machine.Output.Text);
        EmulatorVcpu vcpu = machine.Vcpus[0];
        Assert.Equal(3, vcpu.Exits["io"]);
        Assert.Equal(vcpu.InstructionsExecuted, vcpu.Exits["instructions"]);
        Assert.InRange(vcpu.InstructionsExecuted, 6, 100);
    }

    [Fact]
    public void MmioGoesToTheBusAndUnclaimedAddressesReadAllOnes()
    {
        var device = new TestMmioDevice(0x1234_5678);
        using EmulatorTestMachine machine = EmulatorTestMachine.LongMode(a =>
        {
            a.mov(rbx, DeviceAddress);
            a.mov(eax, __dword_ptr[rbx + 4]);
            a.mov(dx, EmulatorTestMachine.OutputPort);
            a.@out(dx, eax);
            a.mov(__dword_ptr[rbx + 0x10], 0xCAFE);
            a.mov(rbx, UnclaimedAddress);
            a.mov(eax, __dword_ptr[rbx]);
            a.@out(dx, eax);
            a.mov(__dword_ptr[rbx], 1); // dropped
            EmulatorTestMachine.EmitDebugExit(a, 0);
        });
        machine.Vm.Mmio.Register(DeviceAddress, 0x1000, device, "test-device");

        VirtualMachineRunner runner = machine.Run();

        Assert.Null(runner.FailureExit);
        Assert.Equal([0x1234_5678UL, 0xFFFF_FFFFUL], machine.Output.Values);
        (ulong offset, byte[] data) = Assert.Single(device.Writes);
        Assert.Equal(0x10UL, offset);
        Assert.Equal([0xFE, 0xCA, 0, 0], data);
        Assert.Equal(4, machine.Vcpus[0].Exits["mmio"]);
    }

    [Fact]
    public void TheLocalApicPageAndTheIoApicAnswerAsOnKvm()
    {
        using EmulatorTestMachine machine = EmulatorTestMachine.LongMode(a =>
        {
            a.mov(dx, EmulatorTestMachine.OutputPort);
            a.mov(rbx, 0xFEE0_0000UL);
            a.mov(eax, __dword_ptr[rbx + 0x20]); // local APIC ID
            a.@out(dx, eax);
            a.mov(eax, __dword_ptr[rbx + 0x30]); // local APIC version
            a.@out(dx, eax);
            a.mov(rbx, 0xFEC0_0000UL);
            a.mov(__dword_ptr[rbx], 1); // IOREGSEL: version register
            a.mov(eax, __dword_ptr[rbx + 0x10]);
            a.@out(dx, eax);
            EmulatorTestMachine.EmitDebugExit(a, 0);
        });

        VirtualMachineRunner runner = machine.Run();

        Assert.Null(runner.FailureExit);
        Assert.Equal([0UL, 0x0005_0014UL, 0x0017_0011UL], machine.Output.Values);
        Assert.Equal(2, machine.Vcpus[0].Exits["apic-access"]);
        Assert.Equal(2, machine.Vcpus[0].Exits["mmio"]);
    }

    [Fact]
    public void ThePlatformDevicesSitOnTheBusesWhereKvmKeepsThemInKernel()
    {
        using EmulatorTestMachine machine = EmulatorTestMachine.LongMode(a => a.hlt());

        ushort[] ports = machine.Vm.PortIo.Entries.Select(e => (ushort)e.Base).ToArray();
        foreach (ushort port in new ushort[] { 0x20, 0x40, 0x61, 0x70, 0xA0, 0x4D0 })
        {
            Assert.Contains(port, ports);
        }

        Assert.Contains(machine.Vm.Mmio.Entries, e => e.Base == 0xFEC0_0000);
        Assert.Same(machine.Vm.Platform.IrqChip, machine.Vm.Interrupts);
    }

    [Fact]
    public void HaltWithInterruptsDisabledOnOneVcpuIsHaltedForeverWithAReport()
    {
        using EmulatorTestMachine machine = EmulatorTestMachine.LongMode(a =>
        {
            a.cli();
            a.hlt();
            a.nop();
        });

        VirtualMachineRunner runner = machine.Run();

        VcpuExit exit = Assert.IsType<VcpuExit>(runner.FailureExit);
        Assert.Equal(VcpuExitReason.HaltedForever, exit.Reason);
        Assert.Equal(MachineStopReason.Crashed, machine.Vm.Control.StopReason);
        Assert.Equal(2, machine.Vm.Control.ExitStatus);
        Assert.Equal(LongModeTestGuest.CodeAddress + 2, exit.State!.Rip);
        Assert.Equal([0x90], exit.InstructionBytes![..1]); // the NOP after HLT
        Assert.Equal(1, machine.Vcpus[0].Exits["hlt"]);
    }

    [Fact]
    public void HaltWithInterruptsEnabledSleepsWithoutCpuUntilKicked()
    {
        using EmulatorTestMachine machine = EmulatorTestMachine.LongMode(
            a =>
            {
                Label halt = a.CreateLabel();
                a.Label(ref halt);
                a.hlt();
                a.jmp(halt);
            },
            adjust: s => s.Rflags = 0x202);
        EmulatorVcpu vcpu = machine.Vcpus[0];
        int threadId = 0;
        VcpuExit? exit = null;
        var thread = new Thread(() =>
        {
            Volatile.Write(ref threadId, LibC.Gettid());
            exit = vcpu.Run();
        });
        thread.Start();
        Assert.True(SpinWait.SpinUntil(() => vcpu.Exits["hlt"] == 1, TimeSpan.FromSeconds(10)), "the guest never halted");

        long cpuBefore = ThreadCpuTicks(threadId);
        Thread.Sleep(500);
        long cpuUsed = ThreadCpuTicks(threadId) - cpuBefore;
        vcpu.Kick();

        Assert.True(thread.Join(TimeSpan.FromSeconds(5)), "a kick did not end HLT");
        Assert.Equal(VcpuExitReason.Stopped, exit!.Reason);
        Assert.InRange(cpuUsed, 0, 10); // clock ticks of 10 ms: a spinning vCPU would use ~50
        Assert.Equal(1, vcpu.Exits["hlt"]);
        Assert.Equal(1, vcpu.Exits["intr"]);
    }

    [Fact]
    public void AKickBeforeRunMakesRunReturnAtOnceAndOnlyOnce()
    {
        using EmulatorTestMachine machine = EmulatorTestMachine.LongMode(a => EmulatorTestMachine.EmitDebugExit(a, 7));
        EmulatorVcpu vcpu = machine.Vcpus[0];

        vcpu.Kick();
        VcpuExit first = vcpu.Run();
        long instructionsAfterFirst = vcpu.InstructionsExecuted;
        VcpuExit second = vcpu.Run();

        Assert.Equal(VcpuExitReason.Stopped, first.Reason);
        Assert.Equal(0, instructionsAfterFirst);
        Assert.Equal(VcpuExitReason.Stopped, second.Reason);
        Assert.Equal((7 << 1) | 1, machine.Vm.Control.ExitStatus);
    }

    [Fact]
    public async Task AKickStopsABusyGuestAndRunResumesWhereItStopped()
    {
        using EmulatorTestMachine machine = EmulatorTestMachine.LongMode(a =>
        {
            Label spin = a.CreateLabel();
            a.Label(ref spin);
            a.inc(rcx);
            a.jmp(spin);
        });
        EmulatorVcpu vcpu = machine.Vcpus[0];

        Task<VcpuExit> run = machine.StartVcpu0();
        Assert.True(SpinWait.SpinUntil(() => vcpu.Exits["instructions"] > 100_000, TimeSpan.FromSeconds(10)));
        vcpu.Kick();
        VcpuExit exit = await run.WaitAsync(TimeSpan.FromSeconds(5));
        ulong counted = vcpu.GetState().Rcx;

        Assert.Equal(VcpuExitReason.Stopped, exit.Reason);
        Assert.InRange(counted, 50_000UL, ulong.MaxValue);

        run = machine.StartVcpu0();
        Assert.True(SpinWait.SpinUntil(() => vcpu.Exits["instructions"] > (long)counted * 2 + 200_000, TimeSpan.FromSeconds(10)));
        machine.Vm.Control.PowerOff("test");
        exit = await run.WaitAsync(TimeSpan.FromSeconds(5));

        Assert.Equal(VcpuExitReason.Stopped, exit.Reason);
        Assert.True(vcpu.GetState().Rcx > counted, "the second run continued counting");
    }

    [Fact]
    public void JumpingToUnmappedMemoryCrashesTheMachineWithAReport()
    {
        using EmulatorTestMachine machine = EmulatorTestMachine.LongMode(
            a =>
            {
                a.mov(rax, UnclaimedAddress);
                a.jmp(rax);
            },
            adjust: s => s.Idt = new DescriptorTable(0, 0));

        VirtualMachineRunner runner = machine.Run();

        // Without a usable IDT the fetch fault ends in a triple fault once exceptions are delivered;
        // before that, the undelivered #PF is an internal error. Either way: crashed, with a report.
        VcpuExit exit = Assert.IsType<VcpuExit>(runner.FailureExit);
        Assert.Contains(exit.Reason, new[] { VcpuExitReason.Shutdown, VcpuExitReason.InternalError });
        Assert.Equal(MachineStopReason.Crashed, machine.Vm.Control.StopReason);
        Assert.NotNull(exit.State);
        Assert.Contains("RIP:", exit.Format());
    }

    [Fact]
    public void StateRoundTripsWithCr8InTheLocalApicAndItsBase()
    {
        using EmulatorTestMachine machine = EmulatorTestMachine.LongMode(a => a.hlt());
        EmulatorVcpu vcpu = machine.Vcpus[0];
        VcpuState state = vcpu.GetState();
        state.Cr8 = 0x9;
        state.Rbx = 0x1122_3344_5566_7788;

        vcpu.SetState(state);
        VcpuState back = vcpu.GetState();

        Assert.Equal(0x90u, vcpu.LocalApic.TaskPriority);
        Assert.Equal(0x9UL, back.Cr8);
        Assert.Equal(0x1122_3344_5566_7788UL, back.Rbx);
        Assert.Equal(0xFEE0_0900UL, back.ApicBase); // enabled, BSP
    }

    [Fact]
    public void CreatingVcpusIsCheckedAsOnKvm()
    {
        using EmulatorTestMachine machine = EmulatorTestMachine.LongMode(a => a.hlt(), vcpuCount: 2);

        Assert.Throws<ArgumentOutOfRangeException>(() => machine.Vm.CreateVcpu(2));
        Assert.Throws<InvalidOperationException>(() => machine.Vm.CreateVcpu(1));
        Assert.True(machine.Vcpus[1].LocalApic.IsWaitingForSipi, "application processors start in wait-for-SIPI");
        Assert.Equal(0xFEE0_0800UL, machine.Vcpus[1].GetState().ApicBase);
    }

    [Fact]
    public void AnApplicationProcessorStaysParkedUntilASipi()
    {
        using EmulatorTestMachine machine = EmulatorTestMachine.LongMode(
            a =>
            {
                EmulatorTestMachine.EmitOutputString(a, "bsp");
                EmulatorTestMachine.EmitDebugExit(a, 1);
            },
            vcpuCount: 2);

        VirtualMachineRunner runner = machine.Run();

        Assert.Null(runner.FailureExit);
        Assert.Equal("bsp", machine.Output.Text);
        Assert.All(runner.Exits, e => Assert.Equal(VcpuExitReason.Stopped, e.Reason));
        Assert.Equal(0, machine.Vcpus[1].InstructionsExecuted);
        Assert.True(machine.Vcpus[1].LocalApic.IsWaitingForSipi);
    }

    /// <summary>utime + stime of a thread of this process, in clock ticks (/proc/self/task/TID/stat).</summary>
    private static long ThreadCpuTicks(int threadId)
    {
        string stat = File.ReadAllText($"/proc/self/task/{threadId}/stat");
        string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');

        // Fields after "(comm)": state is field 3, so utime (14) and stime (15) are at 11 and 12.
        return long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
    }
}
