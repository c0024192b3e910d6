namespace SharpVisor.Machine.Hypervisor;

/// <summary>One exception or interrupt offered to a paravirtualized CPU before the IDT: the vector, its error code, and the RIP it would return to.</summary>
public readonly record struct ParavirtualEvent(byte Vector, uint? ErrorCode, ParavirtualEventKind Kind, ulong ReturnRip);
