namespace SharpVisor.Machine.CpuTemplates;

/// <summary>
/// A custom CPU template (Firecracker's cpu-config): CPUID bits and MSR values the guest sees
/// instead of what the accelerator would give, applied to every vCPU when it is created.
/// </summary>
public sealed record CpuTemplate
{
    public IReadOnlyList<CpuidModifier> Cpuid { get; init; } = [];

    public IReadOnlyList<MsrModifier> Msrs { get; init; } = [];

    /// <summary>True when the template changes nothing.</summary>
    public bool IsEmpty => Cpuid.Count == 0 && Msrs.Count == 0;

    /// <summary>True when some modifier names <paramref name="leaf"/>/<paramref name="subleaf"/>.</summary>
    public bool Modifies(uint leaf, uint subleaf)
    {
        foreach (CpuidModifier m in Cpuid)
        {
            if (m.Leaf == leaf && m.Subleaf == subleaf)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Forces the template's bits into one CPUID answer.</summary>
    public void ApplyCpuid(uint leaf, uint subleaf, ref uint eax, ref uint ebx, ref uint ecx, ref uint edx)
    {
        foreach (CpuidModifier m in Cpuid)
        {
            if (m.Leaf != leaf || m.Subleaf != subleaf)
            {
                continue;
            }

            switch (m.Register)
            {
                case CpuidRegister.Eax:
                    eax = (uint)m.Bits.Apply(eax);
                    break;
                case CpuidRegister.Ebx:
                    ebx = (uint)m.Bits.Apply(ebx);
                    break;
                case CpuidRegister.Ecx:
                    ecx = (uint)m.Bits.Apply(ecx);
                    break;
                default:
                    edx = (uint)m.Bits.Apply(edx);
                    break;
            }
        }
    }
}
