using Iced.Intel;
using SharpVisor.Emulator.Accelerator;
using SharpVisor.Machine;
using SharpVisor.TestSupport;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Emulator.Tests.Accelerator;

/// <summary>
/// The vCPU loop delivering what the software platform raises: timer interrupts waking HLT, host
/// interrupts through the I/O APIC and the 8259, IPIs, INIT/SIPI start-up of an application
/// processor, NMIs, and exceptions through the IDT up to a triple fault. These need the CPU core's
/// interrupt delivery (X86Cpu.Interrupts.cs, branch cpusys): until it is merged they fail with
/// NotImplementedException.
/// </summary>
public sealed class EmulatorInterruptDeliveryTests
{
    private const ulong IdtAddress = 0x9000;
    private const ulong HandlerAddress = 0x12000;
    private const ulong StartupFlagAddress = 0xA000;
    private const ulong LocalApicBase = 0xFEE0_0000;
    private const ulong IoApicBase = 0xFEC0_0000;
    private const byte StartupVector = 0x20; // the AP starts at 0x20000
    private const uint EnableApic = 0x1FF; // SVR: software enable, spurious vector 0xFF

    [Fact]
    public void TheLocalApicTimerWakesHlt()
    {
        const byte vector = 0x40;
        using EmulatorTestMachine machine = CreateGuest(vector, a =>
        {
            a.mov(__dword_ptr[rbx + 0x3E0], 0xB); // divide by 1
            a.mov(__dword_ptr[rbx + 0x320], vector); // LVT timer: one-shot, unmasked
            a.mov(__dword_ptr[rbx + 0x380], 2_000_000); // 2 ms at the 1 GHz bus clock
        });

        machine.Run();

        Assert.Equal((vector << 1) | 1, machine.Vm.Control.ExitStatus);
        Assert.Equal("I", machine.Output.Text);
        Assert.True(machine.Vcpus[0].Exits["hlt"] >= 1);
        Assert.Equal(1, machine.Vcpus[0].Exits["irq-injection"]);
    }

    [Fact]
    public void TheTscDeadlineTimerWakesHlt()
    {
        const byte vector = 0x41;
        using EmulatorTestMachine machine = CreateGuest(vector, a =>
        {
            a.mov(__dword_ptr[rbx + 0x320], (2 << 17) | vector); // LVT timer: TSC-deadline mode
            a.rdtsc();
            a.shl(rdx, 32);
            a.or(rax, rdx);
            a.add(rax, 4_000_000); // 2 ms at 2 GHz
            a.mov(rdx, rax);
            a.shr(rdx, 32);
            a.mov(ecx, 0x6E0); // IA32_TSC_DEADLINE
            a.wrmsr();
        });

        machine.Run();

        Assert.Equal((vector << 1) | 1, machine.Vm.Control.ExitStatus);
    }

    [Fact]
    public void ThePitThroughThe8259AndLint0WakesHlt()
    {
        const byte vectorBase = 0x20;
        using EmulatorTestMachine machine = CreateGuest(vectorBase, a =>
        {
            RouteThroughPic(a, irq: 0, vectorBase);
            ProgramPit(a, 1193); // 1 ms, rate generator
        });

        machine.Run();

        Assert.Equal((vectorBase << 1) | 1, machine.Vm.Control.ExitStatus);
    }

    [Fact]
    public void ThePitReachesIoApicPin0AsTheMadtSays()
    {
        const byte vector = 0x42;
        using EmulatorTestMachine machine = CreateGuest(vector, a =>
        {
            RouteThroughIoApic(a, pin: 0, vector);
            ProgramPit(a, 1193);
        });

        machine.Run();

        Assert.Equal((vector << 1) | 1, machine.Vm.Control.ExitStatus);
    }

    [Fact]
    public void AnMsiFromAnotherThreadWakesTheHaltedVcpu()
    {
        const byte vector = 0x43;
        using EmulatorTestMachine machine = CreateGuest(vector, _ => { }, readyPort: true);

        RunAndTrigger(machine, () => machine.Vm.Interrupts.SignalMsi(LocalApicBase, vector));

        Assert.Equal((vector << 1) | 1, machine.Vm.Control.ExitStatus);
    }

    [Fact]
    public void AGsiLevelThroughTheIoApicReachesTheGuest()
    {
        const byte vector = 0x44;
        using EmulatorTestMachine machine = CreateGuest(vector, a => RouteThroughIoApic(a, 5, vector), readyPort: true);
        var line = new InterruptLine(machine.Vm.Interrupts, 5);

        RunAndTrigger(machine, line.Pulse);

        Assert.Equal((vector << 1) | 1, machine.Vm.Control.ExitStatus);
    }

    [Fact]
    public void ASelfIpiIsDelivered()
    {
        const byte vector = 0x45;
        using EmulatorTestMachine machine = CreateGuest(vector, a =>
        {
            a.mov(__dword_ptr[rbx + 0x300], (1 << 18) | vector); // ICR: shorthand self, fixed
        });

        machine.Run();

        Assert.Equal((vector << 1) | 1, machine.Vm.Control.ExitStatus);
    }

    [Fact]
    public void AnNmiWakesHltEvenWithInterruptsDisabled()
    {
        using EmulatorTestMachine machine = EmulatorTestMachine.LongMode(a =>
        {
            a.mov(rbx, LocalApicBase);
            a.mov(__dword_ptr[rbx + 0xF0], EnableApic);
            a.cli();
            a.mov(__dword_ptr[rbx + 0x310], 0); // ICR high: APIC ID 0, this vCPU
            a.mov(__dword_ptr[rbx + 0x300], 0x4400); // NMI, assert
            a.hlt();
            EmulatorTestMachine.EmitDebugExit(a, 0x99); // not reached: the NMI handler exits first
        });
        InstallHandler(machine, 2, 0x02);

        VirtualMachineRunner runner = machine.Run();

        Assert.Null(runner.FailureExit);
        Assert.Equal((2 << 1) | 1, machine.Vm.Control.ExitStatus);
        Assert.Equal(1, machine.Vcpus[0].Exits["nmi-injection"]);
    }

    [Fact]
    public void InitAndStartupIpisStartTheApplicationProcessor()
    {
        using EmulatorTestMachine machine = EmulatorTestMachine.LongMode(
            a =>
            {
                a.mov(rbx, LocalApicBase);
                a.mov(__dword_ptr[rbx + 0xF0], EnableApic);
                a.mov(__dword_ptr[rbx + 0x310], 1 << 24); // ICR high: APIC ID 1
                a.mov(__dword_ptr[rbx + 0x300], 0x4500); // INIT, assert
                a.mov(__dword_ptr[rbx + 0x310], 1 << 24);
                a.mov(__dword_ptr[rbx + 0x300], 0x4600 | StartupVector); // STARTUP
                Label wait = a.CreateLabel();
                a.Label(ref wait);
                a.pause();
                a.cmp(__byte_ptr[StartupFlagAddress], 0x5A);
                a.jne(wait);
                EmulatorTestMachine.EmitDebugExit(a, 0x41);
            },
            vcpuCount: 2);

        // The AP starts in real mode at 0x2000:0000: it sets the flag and parks with interrupts off.
        machine.Memory.Write((ulong)StartupVector << 12, GuestCode.Assemble(16, (ulong)StartupVector << 12, a =>
        {
            a.xor(ax, ax);
            a.mov(ds, ax);
            a.mov(__byte_ptr[StartupFlagAddress], 0x5A);
            a.cli();
            Label park = a.CreateLabel();
            a.Label(ref park);
            a.hlt();
            a.jmp(park);
        }));

        VirtualMachineRunner runner = machine.Run();

        Assert.Null(runner.FailureExit);
        Assert.Equal((0x41 << 1) | 1, machine.Vm.Control.ExitStatus);
        EmulatorVcpu ap = machine.Vcpus[1];
        Assert.Equal(1, ap.Exits["init"]);
        Assert.Equal(1, ap.Exits["sipi"]);
        VcpuState apState = ap.GetState();
        Assert.Equal((ushort)(StartupVector << 8), apState.Cs.Selector);
        Assert.Equal(0UL, apState.Cr0 & VcpuState.Cr0ProtectionEnable);
    }

    [Fact]
    public void ATripleFaultEndsTheVcpuWithShutdownAndAReport()
    {
        // An IDT too small for any vector: #UD → #GP → #DF → triple fault.
        using EmulatorTestMachine machine = EmulatorTestMachine.LongMode(
            a => a.ud2(),
            adjust: s => s.Idt = new DescriptorTable(IdtAddress, 0));

        VirtualMachineRunner runner = machine.Run();

        VcpuExit exit = Assert.IsType<VcpuExit>(runner.FailureExit);
        Assert.Equal(VcpuExitReason.Shutdown, exit.Reason);
        Assert.Equal(MachineStopReason.Crashed, machine.Vm.Control.StopReason);
        Assert.NotNull(exit.State);
        Assert.Equal(1, machine.Vcpus[0].Exits["shutdown"]);
    }

    [Fact]
    public void AGuestLoopingInExceptionsKeepsRunningAndStillStops()
    {
        // The #UD handler returns to the UD2 that raised it: an endless exception loop.
        using EmulatorTestMachine machine = EmulatorTestMachine.LongMode(a => a.ud2());
        machine.Memory.Write(HandlerAddress, GuestCode.Assemble(64, HandlerAddress, a => a.iretq()));
        WriteIdtGate(machine, 6, HandlerAddress);
        SetIdt(machine);

        var runner = new VirtualMachineRunner(machine.Vm, machine.Vcpus);
        var thread = new Thread(() => runner.Run(TimeSpan.FromSeconds(20))) { IsBackground = true };
        thread.Start();
        SpinWait.SpinUntil(() => machine.Vcpus[0].Exits["instructions"] > 100_000 || !thread.IsAlive, TimeSpan.FromSeconds(10));
        Assert.True(runner.FailureExit is null, runner.FailureExit?.Format());
        Assert.True(machine.Vcpus[0].Exits["instructions"] > 100_000, "the loop did not run");
        machine.Vm.Control.PowerOff("test");

        Assert.True(thread.Join(TimeSpan.FromSeconds(5)), "the looping vCPU did not stop");
        Assert.Null(runner.FailureExit);
        Assert.Equal(MachineStopReason.PowerOff, machine.Vm.Control.StopReason);
    }

    /// <summary>
    /// A guest that enables its local APIC (RBX = its base), runs <paramref name="program"/>, optionally
    /// says it is ready on <see cref="EmulatorTestMachine.OutputPort"/> + 1, then halts with
    /// interrupts on; the handler for <paramref name="vector"/> prints "I" and exits with the vector.
    /// </summary>
    private static EmulatorTestMachine CreateGuest(byte vector, Action<Assembler> program, bool readyPort = false)
    {
        EmulatorTestMachine machine = EmulatorTestMachine.LongMode(a =>
        {
            a.mov(rbx, LocalApicBase);
            a.mov(__dword_ptr[rbx + 0xF0], EnableApic);
            program(a);
            if (readyPort)
            {
                a.mov(dx, EmulatorTestMachine.OutputPort + 1);
                a.@out(dx, al);
            }

            a.sti();
            Label halt = a.CreateLabel();
            a.Label(ref halt);
            a.hlt();
            a.jmp(halt);
        });
        try
        {
            InstallHandler(machine, vector, vector);
            return machine;
        }
        catch
        {
            machine.Dispose();
            throw;
        }
    }

    /// <summary>A handler for <paramref name="vector"/> that prints "I" and debug-exits with <paramref name="exitValue"/>.</summary>
    private static void InstallHandler(EmulatorTestMachine machine, byte vector, byte exitValue)
    {
        machine.Memory.Write(HandlerAddress, GuestCode.Assemble(64, HandlerAddress, a =>
        {
            EmulatorTestMachine.EmitOutputString(a, "I");
            EmulatorTestMachine.EmitDebugExit(a, exitValue);
        }));
        WriteIdtGate(machine, vector, HandlerAddress);
        SetIdt(machine);
    }

    private static void SetIdt(EmulatorTestMachine machine)
    {
        VcpuState state = machine.Vcpus[0].GetState();
        state.Idt = new DescriptorTable(IdtAddress, 256 * 16 - 1);
        machine.Vcpus[0].SetState(state);
    }

    /// <summary>A 64-bit interrupt gate: present, DPL 0, type 0xE, in the long-mode code segment.</summary>
    private static void WriteIdtGate(EmulatorTestMachine machine, byte vector, ulong handler)
    {
        ulong gate = IdtAddress + (vector * 16UL);
        machine.Memory.Write(gate, (ushort)handler);
        machine.Memory.Write(gate + 2, LongModeTestGuest.CodeSelector);
        machine.Memory.Write(gate + 4, (byte)0);
        machine.Memory.Write(gate + 5, (byte)0x8E);
        machine.Memory.Write(gate + 6, (ushort)(handler >> 16));
        machine.Memory.Write(gate + 8, (uint)(handler >> 32));
        machine.Memory.Write(gate + 12, 0u);
    }

    /// <summary>Masks the 8259 pair and programs one I/O APIC redirection entry: fixed, physical APIC 0, edge, unmasked.</summary>
    private static void RouteThroughIoApic(Assembler a, int pin, byte vector)
    {
        a.mov(al, 0xFF);
        a.@out(0x21, al);
        a.@out(0xA1, al);
        a.mov(rsi, IoApicBase);
        a.mov(__dword_ptr[rsi], 0x10 + (2 * pin));
        a.mov(__dword_ptr[rsi + 0x10], vector);
        a.mov(__dword_ptr[rsi], 0x11 + (2 * pin));
        a.mov(__dword_ptr[rsi + 0x10], 0);
    }

    /// <summary>Initialises the 8259 pair (ICW1-4) with vectors from <paramref name="vectorBase"/> and unmasks one IRQ of the master.</summary>
    private static void RouteThroughPic(Assembler a, int irq, byte vectorBase)
    {
        (byte Port, byte Value)[] sequence =
        [
            (0x20, 0x11), (0x21, vectorBase), (0x21, 0x04), (0x21, 0x01),
            (0xA0, 0x11), (0xA1, (byte)(vectorBase + 8)), (0xA1, 0x02), (0xA1, 0x01),
            (0x21, (byte)~(1 << irq)), (0xA1, 0xFF),
        ];
        foreach ((byte port, byte value) in sequence)
        {
            a.mov(al, value);
            a.@out(port, al);
        }
    }

    /// <summary>PIT channel 0, mode 2 (rate generator), LSB then MSB of <paramref name="count"/>.</summary>
    private static void ProgramPit(Assembler a, ushort count)
    {
        a.mov(al, 0x34);
        a.@out(0x43, al);
        a.mov(al, (byte)count);
        a.@out(0x40, al);
        a.mov(al, (byte)(count >> 8));
        a.@out(0x40, al);
    }

    /// <summary>Runs the machine, waits for the guest's ready write, then calls <paramref name="trigger"/> from this thread.</summary>
    private static void RunAndTrigger(EmulatorTestMachine machine, Action trigger)
    {
        var runner = new VirtualMachineRunner(machine.Vm, machine.Vcpus);
        var thread = new Thread(() => runner.Run(TimeSpan.FromSeconds(20))) { IsBackground = true };
        thread.Start();
        Assert.True(machine.Output.Written.Wait(TimeSpan.FromSeconds(10)), "the guest never said it was ready");
        Assert.True(SpinWait.SpinUntil(() => machine.Vcpus[0].Exits["hlt"] > 0, TimeSpan.FromSeconds(10)), "the guest never halted");
        trigger();

        Assert.True(thread.Join(TimeSpan.FromSeconds(25)));
        Assert.True(runner.FailureExit is null, runner.FailureExit?.Format());
        Assert.Equal(MachineStopReason.DebugExit, machine.Vm.Control.StopReason);
    }
}
