namespace SharpVisor.Machine.Hypervisor;

/// <summary>The four registers one CPUID leaf answers.</summary>
public readonly record struct CpuidResult(uint Eax, uint Ebx, uint Ecx, uint Edx);
