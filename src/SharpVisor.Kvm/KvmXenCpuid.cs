using SharpVisor.Interop.Kvm;
using SharpVisor.Machine.Hypervisor;

namespace SharpVisor.Kvm;

/// <summary>
/// The hypervisor CPUID leaves of a Xen guest on KVM, laid out as QEMU's xen-emu does: Xen's leaves
/// at 0x40000000 (where a guest looks first: Linux finds Xen there) and KVM's own leaves moved up by
/// 0x100 to 0x40000100, where Linux and KVM itself still find them by signature.
/// </summary>
public static class KvmXenCpuid
{
    public const uint HypervisorBase = 0x4000_0000;

    /// <summary>How far KVM's leaves move: to the next hypervisor range.</summary>
    public const uint KvmLeafShift = 0x100;

    /// <summary>Xen's range holds at most this many leaves (0x40000000-0x400000FF).</summary>
    private const uint RangeSize = 0x100;

    /// <summary>
    /// <paramref name="entries"/> (KVM's policy for vCPU <paramref name="vcpuId"/>) with every leaf of
    /// 0x40000000-0x400000FF moved up by 0x100 (the signature leaf's max-leaf EAX with it), and the
    /// hypervisor interface's leaves from 0x40000000 to the max leaf its signature leaf names.
    /// </summary>
    public static KvmCpuidEntry2[] Merge(IReadOnlyList<KvmCpuidEntry2> entries, IHypervisorInterface hypervisor, int vcpuId)
    {
        ArgumentNullException.ThrowIfNull(entries);
        ArgumentNullException.ThrowIfNull(hypervisor);
        var merged = new List<KvmCpuidEntry2>(entries.Count + 8);
        foreach (KvmCpuidEntry2 entry in entries)
        {
            KvmCpuidEntry2 e = entry;
            if (e.Function - HypervisorBase < RangeSize)
            {
                if (e.Function == HypervisorBase && e.Eax - HypervisorBase < RangeSize)
                {
                    e.Eax += KvmLeafShift;
                }

                e.Function += KvmLeafShift;
            }
            else if (e.Function - (HypervisorBase + KvmLeafShift) < RangeSize)
            {
                // Whatever KVM offered in the second range gives way to its own moved leaves.
                continue;
            }

            merged.Add(e);
        }

        if (!hypervisor.TryGetCpuid(vcpuId, HypervisorBase, 0, out CpuidResult signature))
        {
            throw new ArgumentException("the hypervisor interface answers no CPUID leaf 0x40000000", nameof(hypervisor));
        }

        uint last = signature.Eax - HypervisorBase < RangeSize ? signature.Eax : HypervisorBase;
        for (uint leaf = HypervisorBase; leaf <= last; leaf++)
        {
            CpuidResult r = leaf == HypervisorBase ? signature : hypervisor.TryGetCpuid(vcpuId, leaf, 0, out CpuidResult found) ? found : default;
            merged.Add(new KvmCpuidEntry2 { Function = leaf, Index = 0, Eax = r.Eax, Ebx = r.Ebx, Ecx = r.Ecx, Edx = r.Edx });
        }

        return merged.ToArray();
    }
}
