using SharpVisor.Machine;
using SharpVisor.Machine.Hypervisor;

namespace SharpVisor.Emulator.Accelerator;

/// <summary>The software accelerator as a hypervisor interface sees it: its TSC, its vendor's hypercall instruction, its vCPUs.</summary>
internal sealed class EmulatorHypervisorHost : IHypervisorHost
{
    private readonly EmulatorVirtualMachine _vm;

    public EmulatorHypervisorHost(EmulatorVirtualMachine vm) => _vm = vm;

    public HypercallInstruction Instruction =>
        _vm.CpuModel.Vendor == CpuVendor.Amd ? HypercallInstruction.Vmmcall : HypercallInstruction.Vmcall;

    public long TscFrequencyHz => _vm.Platform.Time.TscFrequencyHz;

    public MachineControl Control => _vm.Control;

    public ulong ReadTsc() => _vm.Platform.Time.ReadTsc();

    public void WakeVcpu(int vcpuId) => _vm.WakeVcpu(vcpuId);

    public void StartVcpu(int vcpuId, VcpuState? state) => _vm.Vcpu(vcpuId).StartParavirtual(state);

    public void StopVcpu(int vcpuId) => _vm.Vcpu(vcpuId).StopParavirtual();

    public void FlushVcpuTlb(int vcpuId, int callerVcpuId) => _vm.Vcpu(vcpuId).FlushTlbFrom(callerVcpuId >= 0 ? _vm.Vcpu(callerVcpuId) : null, _vm.Control);
}
