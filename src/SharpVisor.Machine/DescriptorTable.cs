namespace SharpVisor.Machine;

/// <summary>A GDTR or IDTR: linear base and limit.</summary>
public record struct DescriptorTable(ulong Base, ushort Limit);
