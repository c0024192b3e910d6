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

    /// <summary>VCPUOP_up/down as the host saw them: (vCPU, the state it starts with, or null to resume / for a stop).</summary>
    public List<(int Vcpu, string Action, VcpuState? State)> VcpuControls { get; } = [];

    /// <summary>Remote TLB flushes: (target, caller).</summary>
    public List<(int Vcpu, int Caller)> RemoteFlushes { get; } = [];

    public void StartVcpu(int vcpuId, VcpuState? state) => VcpuControls.Add((vcpuId, "start", state));

    public void StopVcpu(int vcpuId) => VcpuControls.Add((vcpuId, "stop", null));

    public void FlushVcpuTlb(int vcpuId, int callerVcpuId)
    {
        lock (RemoteFlushes)
        {
            RemoteFlushes.Add((vcpuId, callerVcpuId));
        }
    }

    public void WakeVcpu(int vcpuId)
    {
        lock (Wakes)
        {
            Wakes.Add(vcpuId);
        }
    }
}
