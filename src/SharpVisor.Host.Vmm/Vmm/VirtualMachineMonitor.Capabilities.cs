using SharpVisor.Emulator;
using SharpVisor.Machine;

namespace SharpVisor.Host.Vmm;

/// <summary>What the VMM records of its machine, from the machine's capabilities (not its type).</summary>
public sealed partial class VirtualMachineMonitor
{
    /// <summary>The snapshot's <c>machine</c> section: the configuration (with the rate limits in force now) and the accelerator, MMU and vendor it runs on.</summary>
    private byte[] SaveConfiguration()
    {
        MachineCapabilities capabilities = _machine.Capabilities;
        return SnapshotConfiguration.Save(
            Devices.WithCurrentRateLimits(Configuration),
            capabilities.Accelerator == "kvm" ? AcceleratorKind.Kvm : AcceleratorKind.Emulator,
            capabilities.Mmu is { } mmu ? Enum.Parse<MmuKind>(mmu, ignoreCase: true) : MmuKind.Shadow,
            Enum.Parse<CpuVendorKind>(capabilities.CpuVendor ?? HostCpu.Name(HostCpu.Vendor), ignoreCase: true));
    }
}
