using SharpVisor.Machine;
using SharpVisor.Machine.Hypervisor;

namespace SharpVisor.Xen.Tests;

/// <summary>An accelerator stand-in: a settable TSC at 2 GHz, VMCALL, and a record of vCPU wake-ups.</summary>
internal sealed class FakeHypervisorHost : IHypervisorHost
{
    public HypercallInstruction Instruction { get; set; } = HypercallInstruction.Vmcall;

    public ulong Tsc { get; set; }

    public long TscFrequencyHz => 2_000_000_000;

    public MachineControl Control { get; } = new();

    public List<int> Wakes { get; } = [];

    public ulong ReadTsc() => Tsc;

    public void WakeVcpu(int vcpuId)
    {
        lock (Wakes)
        {
            Wakes.Add(vcpuId);
        }
    }
}
