namespace SharpVisor.Machine.Protection;

/// <summary>
/// A vCPU's locked GDT (docs/security.md): the guest frame that holds it, where in the frame it
/// starts, and its limit (the last byte's offset in the table).
/// </summary>
public sealed record DescriptorTableFrame(int Vcpu, ulong Frame, int Offset, ushort Limit);
