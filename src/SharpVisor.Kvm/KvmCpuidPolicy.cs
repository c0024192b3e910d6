using SharpVisor.Interop.Kvm;

namespace SharpVisor.Kvm;

/// <summary>
/// The one place that decides what CPUID a vCPU shows its guest. It starts from
/// KVM_GET_SUPPORTED_CPUID (what KVM can virtualize on this host) and changes only these bits:
/// <list type="bullet">
/// <item>Leaf 1 ECX[31] (hypervisor) is set, so the guest knows it is virtualized and looks at
/// the hypervisor leaves for paravirtual features instead of trusting bare-metal timings.</item>
/// <item>Leaf 1 EBX[31:24] (initial APIC id) is the vCPU's id, EBX[23:16] (logical processors)
/// is the vCPU count and EDX[28] (HTT) says whether there is more than one; KVM reports the
/// host CPU's values, which would give every vCPU the same APIC id.</item>
/// <item>Leaves 0xB and 0x1F (extended topology) describe one thread per core and all vCPUs
/// as cores of one package, with EDX = the vCPU's x2APIC id on every subleaf; leaf 4
/// EAX[31:26] (cores per package - 1) agrees with that.</item>
/// <item>Leaves 0x40000000/0x40000001 (KVM paravirt signature "KVMKVMKVM" and feature bits)
/// are advertised; KVM normally reports them, and the signature leaf is added if it does not.</item>
/// <item>Leaf 0xA (architectural PMU) is zeroed when KVM offers no PMU (version 0), so the
/// guest does not probe performance counters that are not there.</item>
/// </list>
/// Everything else is passed through as KVM reports it.
/// </summary>
public static class KvmCpuidPolicy
{
    public const uint HypervisorBit = 1u << 31;
    public const uint HttBit = 1u << 28;
    public const uint KvmSignatureLeaf = 0x4000_0000;
    public const uint KvmFeaturesLeaf = 0x4000_0001;

    // "KVMKVMKVM\0\0\0" as EBX, ECX, EDX.
    private const uint KvmSignatureEbx = 0x4B4D564B;
    private const uint KvmSignatureEcx = 0x564B4D56;
    private const uint KvmSignatureEdx = 0x0000004D;

    // Topology level types in leaf 0xB/0x1F ECX[15:8].
    private const uint LevelTypeSmt = 1;
    private const uint LevelTypeCore = 2;

    /// <summary>The CPUID table for vCPU <paramref name="apicId"/> of a machine with <paramref name="vcpuCount"/> vCPUs.</summary>
    public static KvmCpuidEntry2[] Apply(IReadOnlyList<KvmCpuidEntry2> supported, int apicId, int vcpuCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(apicId);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(apicId, 254);
        ArgumentOutOfRangeException.ThrowIfLessThan(vcpuCount, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(vcpuCount, 255);

        var entries = new List<KvmCpuidEntry2>(supported.Count + 4);
        foreach (KvmCpuidEntry2 original in supported)
        {
            KvmCpuidEntry2 entry = original;
            switch (entry.Function)
            {
                case 0x1:
                    entry.Ecx |= HypervisorBit;
                    entry.Ebx = (entry.Ebx & 0x0000_FFFF) | ((uint)apicId << 24) | ((uint)vcpuCount << 16);
                    entry.Edx = vcpuCount > 1 ? entry.Edx | HttBit : entry.Edx & ~HttBit;
                    break;
                case 0x4:
                    // Subleaves with cache type 0 mean "no more caches"; leave them empty.
                    if ((entry.Eax & 0x1F) != 0)
                    {
                        entry.Eax = (entry.Eax & 0x03FF_FFFF) | ((uint)Math.Min(vcpuCount - 1, 63) << 26);
                    }

                    break;
                case 0xA:
                    if ((entry.Eax & 0xFF) == 0)
                    {
                        entry.Eax = entry.Ebx = entry.Ecx = entry.Edx = 0;
                    }

                    break;
                case 0xB:
                case 0x1F:
                    // Replaced below with a topology that matches the machine.
                    continue;
            }

            entries.Add(entry);
        }

        bool hasExtendedTopology = supported.Any(e => e.Function == 0xB);
        bool hasV2Topology = supported.Any(e => e.Function == 0x1F);
        if (hasExtendedTopology)
        {
            AddTopology(entries, 0xB, apicId, vcpuCount);
        }

        if (hasV2Topology)
        {
            AddTopology(entries, 0x1F, apicId, vcpuCount);
        }

        if (!entries.Any(e => e.Function == KvmSignatureLeaf))
        {
            entries.Add(new KvmCpuidEntry2
            {
                Function = KvmSignatureLeaf,
                Eax = KvmFeaturesLeaf,
                Ebx = KvmSignatureEbx,
                Ecx = KvmSignatureEcx,
                Edx = KvmSignatureEdx,
            });
        }

        return entries.ToArray();
    }

    /// <summary>Subleaf 0: SMT level (1 thread per core); subleaf 1: core level (all vCPUs); subleaf 2: end.</summary>
    private static void AddTopology(List<KvmCpuidEntry2> entries, uint leaf, int apicId, int vcpuCount)
    {
        // Bits of the x2APIC id that select the core within the package.
        uint coreShift = (uint)Math.Ceiling(Math.Log2(vcpuCount));
        uint flags = KvmCpuidEntry2.FlagSignificantIndex;
        entries.Add(new KvmCpuidEntry2 { Function = leaf, Index = 0, Flags = flags, Eax = 0, Ebx = 1, Ecx = (LevelTypeSmt << 8) | 0, Edx = (uint)apicId });
        entries.Add(new KvmCpuidEntry2 { Function = leaf, Index = 1, Flags = flags, Eax = coreShift, Ebx = (uint)vcpuCount, Ecx = (LevelTypeCore << 8) | 1, Edx = (uint)apicId });
        entries.Add(new KvmCpuidEntry2 { Function = leaf, Index = 2, Flags = flags, Eax = 0, Ebx = 0, Ecx = 2, Edx = (uint)apicId });
    }
}
