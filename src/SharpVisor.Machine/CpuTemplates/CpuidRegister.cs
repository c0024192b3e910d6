namespace SharpVisor.Machine.CpuTemplates;

/// <summary>The register of a CPUID leaf a template modifies.</summary>
public enum CpuidRegister
{
    Eax,
    Ebx,
    Ecx,
    Edx,
}
