using Iced.Intel;
using SharpVisor.Machine;
using SharpVisor.Machine.Hypervisor;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Emulator.Tests.Accelerator;

/// <summary>
/// The emulator's half of Xen PV SMP (IHypervisorHost.StartVcpu, FlushVcpuTlb): an AP that never
/// gets a SIPI starts where the hypervisor says, on the vCPU 0 hypercall that asks for it, and a
/// remote flush asked before it ran is taken when it enters its first slice.
/// </summary>
public sealed class ParavirtualStartTests
{
    // A flag vCPU 0 sets after its output: without it vCPU 1's debug exit could stop the machine first.
    private const ulong OutputDone = 0x20000;

    [Fact]
    public void AnApStartsWithTheStateTheHypervisorGives_WithoutASipi_AndTakesAPendingRemoteFlush()
    {
        var hypervisor = new StartingHypervisor();
        using EmulatorTestMachine machine = EmulatorTestMachine.LongMode(a =>
        {
            Label ap = a.CreateLabel();
            a.cmp(rbx, 1);
            a.je(ap);
            a.mov(eax, 1);
            a.vmcall();                                   // vCPU 0: "start vCPU 1"
            a.mov(dx, EmulatorTestMachine.OutputPort);
            a.@out(dx, eax);
            a.mov(__byte_ptr[OutputDone], 1);           // vCPU 1 ends the run only after this output
            Label spin = a.CreateLabel();
            a.Label(ref spin);
            a.pause();
            a.jmp(spin);
            a.Label(ref ap);                              // vCPU 1, RBX = 1 in the state it was given
            a.pause();
            a.cmp(__byte_ptr[OutputDone], 1);
            a.jne(ap);
            a.mov(eax, 0x77);
            a.mov(dx, EmulatorTestMachine.OutputPort);
            a.@out(dx, eax);
            EmulatorTestMachine.EmitDebugExit(a, 0);
        }, vcpuCount: 2, hypervisor: hypervisor);
        VcpuState start = machine.Vcpus[0].GetState();
        start.Rbx = 1;
        hypervisor.ApState = start;

        VirtualMachineRunner runner = machine.Run();

        Assert.Null(runner.FailureExit);
        Assert.Equal([0UL, 0x77UL], machine.Output.Values.Order());   // the two vCPUs' outputs, in either order
        Assert.Equal(1, machine.Vcpus[1].Exits["pv-start"]);
        Assert.Equal(0, machine.Vcpus[1].Exits["sipi"]);
        Assert.Equal(1, machine.Vcpus[1].Exits["remote-tlb-flushes"]);
    }

    /// <summary>On vCPU 0's hypercall: a remote flush of vCPU 1 (not running yet), then VCPUOP_up's start with <see cref="ApState"/>.</summary>
    private sealed class StartingHypervisor : IHypervisorInterface
    {
        private IHypervisorHost? _host;

        public VcpuState? ApState { get; set; }

        public void Connect(IHypervisorHost host) => _host = host;

        public bool TryGetCpuid(int vcpuId, uint leaf, uint subleaf, out CpuidResult result)
        {
            result = default;
            return false;
        }

        public bool TryReadMsr(int vcpuId, uint index, out ulong value)
        {
            value = 0;
            return false;
        }

        public bool TryWriteMsr(int vcpuId, uint index, ulong value, out bool accepted)
        {
            accepted = false;
            return false;
        }

        public void Hypercall(IHypercallContext context)
        {
            Assert.Equal(0, context.VcpuId);
            _host!.FlushVcpuTlb(1, context.VcpuId);
            _host.StartVcpu(1, ApState);
            context.SetRegister(0, 0);
        }

        public bool TryGetPendingUpcall(int vcpuId, out byte vector)
        {
            vector = 0;
            return false;
        }
    }
}
