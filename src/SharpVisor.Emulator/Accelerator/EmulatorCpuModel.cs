namespace SharpVisor.Emulator.Accelerator;

/// <summary>
/// The processor the software accelerator's vCPUs report: every instruction set the core
/// executes plus the platform features the accelerator and the system state implement —
/// paging (PSE, PAE, PGE, PAT, 1 GiB pages), MSRs, MTRRs (<see cref="VcpuMsrs"/>), the local
/// APIC with x2APIC and TSC-deadline, an invariant TSC, and the hypervisor bit (kvmclock), plus
/// the core's system features (<see cref="CpuModel.ImplementedSystemFeatures"/>: SYSENTER, CR4.DE,
/// IA32_ARCH_CAPABILITIES saying an interpreter is immune to Meltdown, MDS and friends, so Linux
/// skips page-table isolation). Features we do not implement stay off: MCE/MCA, VME, FSGSBASE,
/// PCID, LA57.
/// </summary>
public static class EmulatorCpuModel
{
    public const CpuFeature PlatformFeatures =
        CpuFeature.Pse | CpuFeature.Msr | CpuFeature.Pae | CpuFeature.Apic | CpuFeature.Mtrr | CpuFeature.Pge
        | CpuFeature.Pat | CpuFeature.Pse36 | CpuFeature.Page1Gb | CpuFeature.X2Apic | CpuFeature.TscDeadline
        | CpuFeature.InvariantTsc | CpuFeature.Hypervisor;

    /// <summary>The <paramref name="vendor"/> model for a machine whose time base counts the TSC at <paramref name="tscFrequencyHz"/>.</summary>
    public static CpuModel Create(long tscFrequencyHz, CpuVendor vendor = CpuVendor.Intel) =>
        new(CpuModel.ImplementedInstructionSets | CpuModel.ImplementedSystemFeatures | CpuModel.AmdOnlyFeatures | PlatformFeatures, vendor)
        {
            TscFrequency = (ulong)tscFrequencyHz,
        };

    /// <summary>MAXPHYADDR as CPUID 0x80000008 reports it: the MMU's reserved-bit checks must agree.</summary>
    public static int PhysicalAddressBits(CpuModel model) => (int)(model.Query(0x8000_0008, 0, osxsave: false).Eax & 0xFF);
}
