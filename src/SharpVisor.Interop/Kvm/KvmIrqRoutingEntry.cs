using System.Runtime.InteropServices;

namespace SharpVisor.Interop.Kvm;

/// <summary>
/// struct kvm_irq_routing_entry: where a GSI goes — a pin of an in-kernel irqchip
/// (<see cref="TypeIrqchip"/>) or an MSI message (<see cref="TypeMsi"/>). The union starts at offset 16.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 48)]
public struct KvmIrqRoutingEntry
{
    public const uint TypeIrqchip = 1;
    public const uint TypeMsi = 2;

    /// <summary>KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE, KVM_IRQCHIP_IOAPIC.</summary>
    public const uint IrqchipPicMaster = 0;
    public const uint IrqchipPicSlave = 1;
    public const uint IrqchipIoapic = 2;

    [FieldOffset(0)] public uint Gsi;
    [FieldOffset(4)] public uint Type;
    [FieldOffset(8)] public uint Flags;
    [FieldOffset(12)] public uint Pad;

    // u.irqchip
    [FieldOffset(16)] public uint Irqchip;
    [FieldOffset(20)] public uint Pin;

    // u.msi
    [FieldOffset(16)] public uint MsiAddressLo;
    [FieldOffset(20)] public uint MsiAddressHi;
    [FieldOffset(24)] public uint MsiData;
    [FieldOffset(28)] public uint MsiDevId;
}
