namespace SharpVisor.Devices.Pci;

/// <summary>
/// Where bus 0 places BARs and which GSIs carry INTx. The defaults follow the PC layout this
/// project uses: the 32-bit window is the MMIO hole from 3 GiB up to the I/O APIC at
/// 0xFEC0_0000 (the I/O APIC, HPET and local APIC above it stay the platform's), and INTx
/// lines are swizzled over the I/O APIC's PCI pins, GSIs 16-23.
/// </summary>
public sealed record PciBusLayout
{
    public const ulong DefaultMmio32Start = 0xC000_0000;
    public const ulong DefaultMmio32End = 0xFEC0_0000;

    public PciWindow Mmio32 { get; init; } = new(DefaultMmio32Start, DefaultMmio32End - DefaultMmio32Start);

    /// <summary>An optional window above RAM for 64-bit BARs the guest moves there.</summary>
    public PciWindow? Mmio64 { get; init; }

    public uint IntxGsiBase { get; init; } = 16;

    public uint IntxGsiCount { get; init; } = 8;

    /// <summary>The GSI that carries INTx# <paramref name="pin"/> (1 = INTA#) of device <paramref name="slot"/>.</summary>
    public uint IntxGsi(int slot, int pin) => IntxGsiBase + (uint)((slot + pin - 1) % (int)IntxGsiCount);
}
