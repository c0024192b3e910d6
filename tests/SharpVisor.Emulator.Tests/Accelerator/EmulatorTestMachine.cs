using Iced.Intel;
using SharpVisor.Emulator.Accelerator;
using SharpVisor.Emulator.Mmu;
using SharpVisor.Machine;
using SharpVisor.Machine.CpuTemplates;
using SharpVisor.Machine.Hypervisor;
using SharpVisor.Memory;
using SharpVisor.TestSupport;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Emulator.Tests.Accelerator;

/// <summary>
/// A small machine on the software accelerator for tests: 2 MiB of RAM, an output port, a
/// debug-exit port, and vCPU 0 in long mode (via <see cref="LongModeTestGuest"/>) at the code.
/// </summary>
internal sealed class EmulatorTestMachine : IDisposable
{
    public const ushort OutputPort = 0x10;
    public const ushort DebugExitPort = 0xF4;
    public const ulong RamSize = 2 << 20;

    private EmulatorTestMachine(int vcpuCount, MmuMode mmuMode, IHypervisorInterface? hypervisor, CpuTemplate? template = null)
    {
        Memory = GuestMemory.CreateRam(RamSize);
        try
        {
            Vm = new EmulatorVirtualMachine(Memory, vcpuCount, mmuMode) { CpuTemplate = template };
            if (hypervisor is not null)
            {
                Vm.AttachHypervisorInterface(hypervisor);
            }

            Vcpus = Enumerable.Range(0, vcpuCount).Select(id => (EmulatorVcpu)Vm.CreateVcpu(id)).ToArray();
            Output = new TestPortDevice();
            Vm.PortIo.Register(OutputPort, 4, Output, "test-output");
            Vm.PortIo.Register(DebugExitPort, 1, new TestDebugExitDevice(Vm.Control), "debug-exit");
        }
        catch
        {
            Vm?.Dispose();
            Memory.Dispose();
            throw;
        }
    }

    public GuestMemory Memory { get; }

    public EmulatorVirtualMachine Vm { get; }

    public EmulatorVcpu[] Vcpus { get; }

    public TestPortDevice Output { get; }

    /// <summary>A machine whose vCPU 0 starts in long mode at <see cref="LongModeTestGuest.CodeAddress"/> (APs wait for a SIPI).</summary>
    public static EmulatorTestMachine LongMode(Action<Assembler> code, int vcpuCount = 1, MmuMode mmuMode = MmuMode.Shadow, Action<VcpuState>? adjust = null, IHypervisorInterface? hypervisor = null, CpuTemplate? template = null)
    {
        var machine = new EmulatorTestMachine(vcpuCount, mmuMode, hypervisor, template);
        try
        {
            LongModeTestGuest.Load(machine.Memory, GuestCode.Assemble(64, LongModeTestGuest.CodeAddress, code));
            VcpuState state = LongModeTestGuest.Configure(machine.Vcpus[0].GetState());
            adjust?.Invoke(state);
            machine.Vcpus[0].SetState(state);
        }
        catch
        {
            machine.Dispose();
            throw;
        }

        return machine;
    }

    /// <summary>Runs all vCPUs until the machine stops; fails the test on timeout.</summary>
    public VirtualMachineRunner Run(TimeSpan? timeout = null)
    {
        var runner = new VirtualMachineRunner(Vm, Vcpus);
        bool stopped = runner.Run(timeout ?? TimeSpan.FromSeconds(20));
        Assert.True(stopped, "the guest did not stop in time; exits: " + string.Join("; ", runner.Exits.Select(e => e.Format())));
        return runner;
    }

    /// <summary>Runs vCPU 0 alone on a background thread; the task ends with its exit.</summary>
    public Task<VcpuExit> StartVcpu0()
    {
        var done = new TaskCompletionSource<VcpuExit>(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                done.SetResult(Vcpus[0].Run());
            }
            catch (Exception e)
            {
                done.SetException(e);
            }
        })
        {
            IsBackground = true,
            Name = "test-vcpu0",
        };
        thread.Start();
        return done.Task;
    }

    public static void EmitOutputString(Assembler a, string text)
    {
        a.mov(dx, OutputPort);
        foreach (char c in text)
        {
            a.mov(al, (byte)c);
            a.@out(dx, al);
        }
    }

    public static void EmitDebugExit(Assembler a, byte value)
    {
        a.mov(al, value);
        a.@out((byte)DebugExitPort, al);

        // Not reached once the machine stops; keeps a runaway guest from executing garbage.
        Label self = a.CreateLabel();
        a.Label(ref self);
        a.jmp(self);
    }

    public void Dispose()
    {
        Vm.Dispose();
        Memory.Dispose();
    }
}
