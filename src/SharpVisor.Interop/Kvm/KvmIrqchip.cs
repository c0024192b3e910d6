using System.Runtime.InteropServices;

namespace SharpVisor.Interop.Kvm;

/// <summary>struct kvm_irqchip: one in-kernel chip's state (0 PIC master, 1 PIC slave, 2 I/O APIC).</summary>
[StructLayout(LayoutKind.Explicit, Size = 520)]
public unsafe struct KvmIrqchip
{
    public const uint PicMaster = 0;
    public const uint PicSlave = 1;
    public const uint IoApic = 2;

    [FieldOffset(0)] public uint ChipId;
    [FieldOffset(4)] public uint Pad;
    [FieldOffset(8)] public fixed byte Chip[512];
}
