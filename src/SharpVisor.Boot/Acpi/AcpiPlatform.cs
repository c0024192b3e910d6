namespace SharpVisor.Boot.Acpi;

/// <summary>
/// What the ACPI tables describe: CPUs, interrupt controllers, the PM register block, the PCI
/// host bridge windows and INTx routing, and which legacy ISA devices exist. The defaults match
/// the PC layout SharpVisor builds (PCI 32-bit window 0xC000_0000-0xFEBF_FFFF, I/O APIC at
/// 0xFEC0_0000, PM block at port 0x600, SCI on IRQ 9).
/// </summary>
public sealed record AcpiPlatform
{
    public int VcpuCount { get; init; } = 1;

    public uint LocalApicAddress { get; init; } = 0xFEE0_0000;

    public uint IoApicAddress { get; init; } = 0xFEC0_0000;

    public byte IoApicId { get; init; }

    public ushort PmIoBase { get; init; } = AcpiPmDevice.DefaultBasePort;

    public byte SciIrq { get; init; } = AcpiPmDevice.DefaultSciIrq;

    /// <summary>The root bridge's 32-bit MMIO window (BARs and the guest's moves of them).</summary>
    public (uint Start, uint End) PciMmio32 { get; init; } = (0xC000_0000, 0xFEBF_FFFF);

    /// <summary>An optional 64-bit window above RAM.</summary>
    public (ulong Start, ulong End)? PciMmio64 { get; init; }

    public IReadOnlyList<AcpiPciRoute> PciRoutes { get; init; } = [];

    /// <summary>COM1 at 0x3F8, IRQ 4.</summary>
    public bool HasSerialPort { get; init; } = true;

    /// <summary>The i8042 keyboard controller at 0x60/0x64, IRQs 1 and 12.</summary>
    public bool HasI8042 { get; init; } = true;

    /// <summary>The CMOS RTC at 0x70; when false the FADT says it is absent.</summary>
    public bool HasCmosRtc { get; init; }
}
