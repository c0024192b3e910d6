using SharpVisor.Emulator.Platform;
using SharpVisor.Machine;

namespace SharpVisor.Emulator.Accelerator;

/// <summary>
/// KVM's paravirtual hypercalls on the software accelerator: PV unhalt of a vCPU, IPIs straight
/// to a local APIC by physical id (as KVM's phys_map), and yielding the host CPU.
/// </summary>
internal sealed class EmulatorParavirtTarget : IKvmParavirtTarget
{
    private readonly EmulatorVirtualMachine _vm;

    public EmulatorParavirtTarget(EmulatorVirtualMachine vm) => _vm = vm;

    public bool KickCpu(uint apicId)
    {
        EmulatorVcpu? vcpu = _vm.FindVcpuByApicId(apicId);
        vcpu?.PvUnhalt();
        return vcpu is not null;
    }

    public bool SendIpi(uint apicId, ulong icr)
    {
        LocalApic? apic = FindApic(apicId);
        if (apic is null)
        {
            return false;
        }

        var message = new ApicMessage(
            Vector: (int)(icr & 0xFF),
            DeliveryMode: (ApicDeliveryMode)((icr >> 8) & 7),
            LogicalDestination: false,
            Destination: apicId,
            LevelTriggered: (icr & (1UL << 15)) != 0,
            Assert: (icr & (1UL << 14)) != 0);
        apic.Receive(message);
        return true;
    }

    public void YieldTo(uint apicId) => Thread.Yield();

    private LocalApic? FindApic(uint apicId)
    {
        foreach (LocalApic apic in _vm.Platform.IrqChip.LocalApics)
        {
            if (apic.Id == apicId && apic.IsHardwareEnabled)
            {
                return apic;
            }
        }

        return null;
    }
}
