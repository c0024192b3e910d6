using Iced.Intel;
using SharpVisor.Interop;
using SharpVisor.Machine;
using SharpVisor.TestSupport;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Kvm.Tests;

/// <summary>
/// Interrupts through the in-kernel irqchip: an MSI to the local APIC, a GSI line through the
/// I/O APIC, and an irqfd. The guest enables its local APIC, programs the I/O APIC, says it is
/// ready, and halts with interrupts on; its handler ends the machine with the vector as status.
/// </summary>
public class KvmInterruptTests
{
    private const ushort ReadyPort = 0x32;
    private const ulong IdtAddress = 0x9000;
    private const ulong HandlerAddress = 0x12000;
    private const ulong LocalApicBase = 0xFEE0_0000;
    private const ulong IoApicBase = 0xFEC0_0000;

    [KvmFact]
    public void MsiReachesTheGuestHandler()
    {
        const byte vector = 0x40;
        using KvmTestMachine machine = CreateGuest(vector, _ => { }, out ManualResetEventSlim ready);

        RunAndTrigger(machine, ready, () => machine.Vm.Interrupts.SignalMsi(LocalApicBase, vector));

        Assert.Equal((vector << 1) | 1, machine.Vm.Control.ExitStatus);
        Assert.Equal("I", machine.Output.Text);
    }

    [KvmFact]
    public void MsiThroughAnIrqFdRouteReachesTheGuestHandler()
    {
        const byte vector = 0x43;
        using KvmTestMachine machine = CreateGuest(vector, _ => { }, out ManualResetEventSlim ready);
        using IMsiRoute route = Assert.IsAssignableFrom<IMsiRouteProvider>(machine.Vm.Interrupts).TryCreateMsiRoute()!;
        Assert.NotNull(route);

        RunAndTrigger(machine, ready, () => route.Signal(LocalApicBase, vector));

        Assert.Equal((vector << 1) | 1, machine.Vm.Control.ExitStatus);
        Assert.Equal(1, machine.Vm.MsiRouteCount);
        Assert.Equal(1, ((KvmMsiRoute)route).IrqfdSignals);
    }

    [KvmFact]
    public void GsiLevelThroughTheIoApicReachesTheGuestHandler()
    {
        const byte vector = 0x41;
        using KvmTestMachine machine = CreateGuest(vector, a => RouteThroughIoApic(a, 5, vector), out ManualResetEventSlim ready);
        var line = new InterruptLine(machine.Vm.Interrupts, 5);

        RunAndTrigger(machine, ready, line.Pulse);

        Assert.Equal((vector << 1) | 1, machine.Vm.Control.ExitStatus);
    }

    [KvmFact]
    public void IrqFdSignalReachesTheGuestHandlerWithoutAnExit()
    {
        const byte vector = 0x42;
        using KvmTestMachine machine = CreateGuest(vector, a => RouteThroughIoApic(a, 6, vector), out ManualResetEventSlim ready);
        using var eventFd = new EventFd();
        machine.Vm.RegisterIrqFd(eventFd, 6);

        RunAndTrigger(machine, ready, () => eventFd.Signal());

        Assert.Equal((vector << 1) | 1, machine.Vm.Control.ExitStatus);
        machine.Vm.UnregisterIrqFd(eventFd, 6);
    }

    [KvmFact]
    public void IsaIrqThroughThe8259AndLint0ReachesTheGuestHandler()
    {
        const byte vector = 0x25;
        using KvmTestMachine machine = CreateGuest(vector, a => RouteThroughPic(a, irq: 5, vectorBase: 0x20), out ManualResetEventSlim ready);
        var line = new InterruptLine(machine.Vm.Interrupts, 5);

        RunAndTrigger(machine, ready, line.Pulse);

        Assert.Equal((vector << 1) | 1, machine.Vm.Control.ExitStatus);
    }

    /// <summary>Masks the 8259 pair and programs one I/O APIC redirection entry: fixed, physical APIC 0, edge, unmasked.</summary>
    private static void RouteThroughIoApic(Assembler a, int pin, byte vector)
    {
        // ISA IRQs also reach the 8259 pair, which KVM wires to LINT0 of vCPU 0 as ExtINT
        // ("virtual wire"); mask both PICs, as an OS using the I/O APIC does.
        a.mov(al, 0xFF);
        a.@out(0x21, al);
        a.@out(0xA1, al);
        a.mov(rbx, IoApicBase);
        a.mov(__dword_ptr[rbx], 0x10 + (2 * pin));
        a.mov(__dword_ptr[rbx + 0x10], vector);
        a.mov(__dword_ptr[rbx], 0x11 + (2 * pin));
        a.mov(__dword_ptr[rbx + 0x10], 0);
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

    private static void RunAndTrigger(KvmTestMachine machine, ManualResetEventSlim ready, Action trigger)
    {
        var runner = new VirtualMachineRunner(machine.Vm, machine.Vcpus);
        var thread = new Thread(() => runner.Run(TimeSpan.FromSeconds(20))) { IsBackground = true };
        thread.Start();
        Assert.True(ready.Wait(TimeSpan.FromSeconds(10)), "the guest never said it was ready");

        // The guest executes sti; hlt right after the ready write; give it a moment to get there.
        Thread.Sleep(50);
        trigger();

        Assert.True(thread.Join(TimeSpan.FromSeconds(25)));
        Assert.True(runner.FailureExit is null, runner.FailureExit?.Format());
        Assert.Equal(MachineStopReason.DebugExit, machine.Vm.Control.StopReason);
    }

    private static KvmTestMachine CreateGuest(byte vector, Action<Assembler> programController, out ManualResetEventSlim ready)
    {
        KvmTestMachine machine = KvmTestMachine.LongMode(a =>
        {
            // Software-enable the local APIC (spurious vector register, bit 8).
            a.mov(rbx, LocalApicBase);
            a.mov(__dword_ptr[rbx + 0xF0], 0x1FF);
            programController(a);
            a.mov(dx, ReadyPort);
            a.@out(dx, al);
            a.sti();
            Label halt = a.CreateLabel();
            a.Label(ref halt);
            a.hlt();
            a.jmp(halt);
        });
        try
        {
            machine.Memory.Write(HandlerAddress, GuestCode.Assemble(64, HandlerAddress, a =>
            {
                KvmTestMachine.EmitOutputString(a, "I");
                KvmTestMachine.EmitDebugExit(a, vector);
            }));
            WriteIdtGate(machine, vector, HandlerAddress);
            VcpuState state = machine.Vcpus[0].GetState();
            state.Idt = new DescriptorTable(IdtAddress, 256 * 16 - 1);
            machine.Vcpus[0].SetState(state);

            var readySignal = new ManualResetEventSlim();
            var readyDevice = new RecordingPortDevice();
            readyDevice.Written += (_, _) => readySignal.Set();
            machine.Vm.PortIo.Register(ReadyPort, 1, readyDevice, "ready");
            ready = readySignal;
            return machine;
        }
        catch
        {
            machine.Dispose();
            throw;
        }
    }

    /// <summary>A 64-bit interrupt gate: present, DPL 0, type 0xE, in the long-mode code segment.</summary>
    private static void WriteIdtGate(KvmTestMachine machine, byte vector, ulong handler)
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
}
