using SharpVisor.Interop.Kvm;
using SharpVisor.Machine.CpuTemplates;

namespace SharpVisor.Kvm;

/// <summary>
/// Applies a <see cref="CpuTemplate"/>'s CPUID bits to the table <see cref="KvmCpuidPolicy"/> made,
/// as Firecracker does: every leaf/subleaf the template names must be in the table (KVM offers
/// it), else the vCPU is not created.
/// </summary>
public static class KvmCpuTemplate
{
    public static void ApplyCpuid(KvmCpuidEntry2[] entries, CpuTemplate template)
    {
        ArgumentNullException.ThrowIfNull(entries);
        ArgumentNullException.ThrowIfNull(template);
        foreach (CpuidModifier m in template.Cpuid)
        {
            int i = Array.FindIndex(entries, e => e.Function == m.Leaf && e.Index == m.Subleaf);
            if (i < 0)
            {
                throw new InvalidOperationException($"Template changes a CPUID entry not supported by KVM: Leaf: 0x{m.Leaf:x}, Subleaf: 0x{m.Subleaf:x}");
            }
        }

        for (int i = 0; i < entries.Length; i++)
        {
            ref KvmCpuidEntry2 e = ref entries[i];
            template.ApplyCpuid(e.Function, e.Index, ref e.Eax, ref e.Ebx, ref e.Ecx, ref e.Edx);
        }
    }

    /// <summary>
    /// Checks the table KVM reports back (KVM_GET_CPUID2) still has every bit the template forces:
    /// some KVMs override leaves with the host's (PVM does so for leaf 1 EDX and leaf 7), and a
    /// guest must not run with a CPU its owner did not ask for. Throws naming the first difference.
    /// </summary>
    public static void CheckApplied(IReadOnlyList<KvmCpuidEntry2> reported, CpuTemplate template)
    {
        ArgumentNullException.ThrowIfNull(reported);
        ArgumentNullException.ThrowIfNull(template);
        foreach (CpuidModifier m in template.Cpuid)
        {
            foreach (KvmCpuidEntry2 e in reported)
            {
                if (e.Function != m.Leaf || e.Index != m.Subleaf)
                {
                    continue;
                }

                uint value = m.Register switch
                {
                    CpuidRegister.Eax => e.Eax,
                    CpuidRegister.Ebx => e.Ebx,
                    CpuidRegister.Ecx => e.Ecx,
                    _ => e.Edx,
                };
                if ((value & (uint)m.Bits.Clear) != 0 || (~value & (uint)m.Bits.Set) != 0)
                {
                    throw new InvalidOperationException(
                        $"KVM did not take the CPU template's CPUID leaf 0x{m.Leaf:x} subleaf 0x{m.Subleaf:x} {m.Register.ToString().ToLowerInvariant()}: " +
                        $"it reports 0x{value:x8} after KVM_SET_CPUID2 (this KVM overrides that leaf with the host's)");
                }
            }
        }
    }
}
