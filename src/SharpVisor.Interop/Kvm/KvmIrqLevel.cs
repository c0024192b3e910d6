using System.Runtime.InteropServices;

namespace SharpVisor.Interop.Kvm;

/// <summary>struct kvm_irq_level (KVM_IRQ_LINE): drive a GSI high or low.</summary>
[StructLayout(LayoutKind.Explicit, Size = 8)]
public struct KvmIrqLevel
{
    /// <summary>The GSI (shares its word with the status that KVM_IRQ_LINE_STATUS returns).</summary>
    [FieldOffset(0)] public uint Irq;
    [FieldOffset(0)] public int Status;
    [FieldOffset(4)] public uint Level;
}
