using Iced.Intel;
using SharpVisor.Machine;
using SharpVisor.Memory;
using SharpVisor.TestSupport;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Kvm.Tests;

/// <summary>
/// A small KVM machine for tests: 2 MiB of RAM, a debug-exit port, an output port, and
/// vCPUs in long mode (via <see cref="LongModeTestGuest"/>) or any state the test sets.
/// </summary>
internal sealed class KvmTestMachine : IDisposable
{
    public const ushort OutputPort = 0x10;
    public const ushort DebugExitPort = 0xF4;
    public const ulong RamSize = 2 << 20;

    private KvmTestMachine(int vcpuCount, Action<GuestMemory>? addRegions, Action<KvmVirtualMachine>? beforeVcpus = null)
    {
        Memory = GuestMemory.CreateRam(RamSize);
        try
        {
            addRegions?.Invoke(Memory);
            Vm = KvmVirtualMachine.Create(Memory, vcpuCount);
            beforeVcpus?.Invoke(Vm);
            Vcpus = Enumerable.Range(0, vcpuCount).Select(id => (KvmVcpu)Vm.CreateVcpu(id)).ToArray();
            Output = new RecordingPortDevice();
            Vm.PortIo.Register(OutputPort, 4, Output, "test-output");
            Vm.PortIo.Register(DebugExitPort, 1, new DebugExitDevice(Vm.Control), "debug-exit");
        }
        catch
        {
            Vm?.Dispose();
            Memory.Dispose();
            throw;
        }
    }

    public GuestMemory Memory { get; }

    public KvmVirtualMachine Vm { get; }

    public KvmVcpu[] Vcpus { get; }

    public RecordingPortDevice Output { get; }

    /// <summary>A machine whose vCPUs all start in long mode at <see cref="LongModeTestGuest.CodeAddress"/>.</summary>
    /// <summary><paramref name="beforeVcpus"/> runs on the VM before its vCPUs exist (a hypervisor interface is attached there).</summary>
    public static KvmTestMachine LongMode(Action<Assembler> code, int vcpuCount = 1, Action<GuestMemory>? addRegions = null, Action<KvmVirtualMachine>? beforeVcpus = null)
    {
        var machine = new KvmTestMachine(vcpuCount, addRegions, beforeVcpus);
        try
        {
            LongModeTestGuest.Load(machine.Memory, GuestCode.Assemble(64, LongModeTestGuest.CodeAddress, code));
            foreach (KvmVcpu vcpu in machine.Vcpus)
            {
                // Each vCPU gets its own stack page.
                ulong stack = LongModeTestGuest.StackTop - ((ulong)vcpu.Id * 0x400);
                vcpu.SetState(LongModeTestGuest.Configure(vcpu.GetState(), rsp: stack));
            }
        }
        catch
        {
            machine.Dispose();
            throw;
        }

        return machine;
    }

    /// <summary>A machine with vCPUs in KVM's reset state; the test sets the state.</summary>
    public static KvmTestMachine Bare(int vcpuCount = 1, Action<GuestMemory>? addRegions = null) => new(vcpuCount, addRegions);

    /// <summary>Runs all vCPUs until the machine stops; fails the test on timeout.</summary>
    public VirtualMachineRunner Run(TimeSpan? timeout = null)
    {
        var runner = new VirtualMachineRunner(Vm, Vcpus);
        bool stopped = runner.Run(timeout ?? TimeSpan.FromSeconds(20));
        Assert.True(stopped, "the guest did not stop in time; exits: " + string.Join("; ", runner.Exits.Select(e => e.Format())));
        return runner;
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
