namespace SharpVisor.Machine.CpuTemplates;

/// <summary>One MSR's initial value, as a CPU template changes what the accelerator gives.</summary>
public sealed record MsrModifier(uint Index, TemplateBits Bits);
