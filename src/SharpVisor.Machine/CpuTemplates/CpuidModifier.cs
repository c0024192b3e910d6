namespace SharpVisor.Machine.CpuTemplates;

/// <summary>
/// One register of one CPUID leaf/subleaf, as a CPU template changes it. The subleaf always
/// takes part in the match, as in Firecracker (whose leaves without subleaves use subleaf 0).
/// </summary>
public sealed record CpuidModifier(uint Leaf, uint Subleaf, CpuidRegister Register, TemplateBits Bits);
