using System.Buffers.Binary;
using SharpVisor.Memory;

namespace SharpVisor.Boot.Acpi;

/// <summary>
/// SharpVisor's ACPI tables: RSDP (v2) → XSDT/RSDT → FADT (with FACS and DSDT) and MADT. They
/// are laid out together from <see cref="DefaultBaseAddress"/> in the BIOS area, where Linux
/// finds the RSDP by scanning 0xE0000-0xFFFFF on 16-byte boundaries (the boot loader may also
/// pass <see cref="RsdpAddress"/> in boot_params.acpi_rsdp_addr). The FADT is a full one, not
/// hardware-reduced: PM1a event/control blocks and the PM timer are ports of <see cref="AcpiPmDevice"/>,
/// the reset register is its reset port, the power button is the fixed-feature one, SCI is IRQ 9.
/// </summary>
public sealed class AcpiTables
{
    public const ulong DefaultBaseAddress = 0xE_0000;
    public const ulong BiosAreaEnd = 0x10_0000;

    private const int RsdpLength = 36;
    private const int FacsLength = 64;

    /// <summary>FACS Firmware_Waking_Vector (32-bit): where firmware resumes the OS from S3, in real mode.</summary>
    public const int FacsWakingVectorOffset = 12;

    /// <summary>FACS X_Firmware_Waking_Vector (64-bit); used instead when not zero (real mode too: no 64BIT_WAKE support).</summary>
    public const int FacsXWakingVectorOffset = 24;

    /// <summary>Where the FACS is (the firmware's waking vector lives there).</summary>
    public ulong FacsAddress => Addresses["FACS"];
    private const int FadtRevision = 6;
    private const byte FadtMinorRevision = 5;

    private const byte GasSystemMemory = 0;
    private const byte GasSystemIo = 1;
    private const byte AccessByte = 1;
    private const byte AccessWord = 2;
    private const byte AccessDWord = 3;

    private AcpiTables(ulong baseAddress)
    {
        BaseAddress = baseAddress;
    }

    public ulong BaseAddress { get; }

    public ulong RsdpAddress => BaseAddress;

    /// <summary>Everything, as it is laid out from <see cref="BaseAddress"/>.</summary>
    public byte[] Image { get; private set; } = [];

    public byte[] Rsdp { get; private set; } = [];

    public byte[] Xsdt { get; private set; } = [];

    public byte[] Rsdt { get; private set; } = [];

    public byte[] Fadt { get; private set; } = [];

    public byte[] Facs { get; private set; } = [];

    public byte[] Madt { get; private set; } = [];

    public byte[] Dsdt { get; private set; } = [];

    public IReadOnlyDictionary<string, ulong> Addresses { get; private set; } = new Dictionary<string, ulong>();

    public static AcpiTables Build(AcpiPlatform platform, ulong baseAddress = DefaultBaseAddress)
    {
        if (platform.VcpuCount is < 1 or > 255)
        {
            throw new ArgumentOutOfRangeException(nameof(platform), "the MADT describes 1 to 255 vCPUs");
        }

        if ((baseAddress & 0x3F) != 0)
        {
            throw new ArgumentException("the ACPI tables' base must be 64-byte aligned", nameof(baseAddress));
        }

        var tables = new AcpiTables(baseAddress)
        {
            Dsdt = BuildDsdt(platform),
            Madt = BuildMadt(platform),
            Facs = BuildFacs(),
        };

        // Layout: RSDP, FACS (64-byte aligned), DSDT, FADT, MADT, XSDT, RSDT.
        ulong facs = baseAddress + 64;
        ulong dsdt = facs + FacsLength;
        ulong fadt = Align(dsdt + (ulong)tables.Dsdt.Length);
        tables.Fadt = BuildFadt(platform, facs, dsdt);
        ulong madt = Align(fadt + (ulong)tables.Fadt.Length);
        ulong xsdt = Align(madt + (ulong)tables.Madt.Length);
        tables.Xsdt = BuildXsdt([fadt, madt]);
        ulong rsdt = Align(xsdt + (ulong)tables.Xsdt.Length);
        tables.Rsdt = BuildRsdt([(uint)fadt, (uint)madt]);
        ulong end = rsdt + (ulong)tables.Rsdt.Length;
        if (end > uint.MaxValue || (baseAddress < BiosAreaEnd && end > BiosAreaEnd))
        {
            throw new InvalidOperationException($"ACPI tables (0x{end - baseAddress:x} bytes) do not fit below 0x{BiosAreaEnd:x}");
        }

        tables.Rsdp = BuildRsdp((uint)rsdt, xsdt);
        tables.Addresses = new Dictionary<string, ulong>
        {
            ["RSDP"] = baseAddress,
            ["FACS"] = facs,
            ["DSDT"] = dsdt,
            ["FACP"] = fadt,
            ["APIC"] = madt,
            ["XSDT"] = xsdt,
            ["RSDT"] = rsdt,
        };

        byte[] image = new byte[end - baseAddress];
        void Place(string name, byte[] table) => table.CopyTo(image, (int)(tables.Addresses[name] - baseAddress));
        Place("RSDP", tables.Rsdp);
        Place("FACS", tables.Facs);
        Place("DSDT", tables.Dsdt);
        Place("FACP", tables.Fadt);
        Place("APIC", tables.Madt);
        Place("XSDT", tables.Xsdt);
        Place("RSDT", tables.Rsdt);
        tables.Image = image;
        return tables;
    }

    /// <summary>Copies the tables into guest memory at <see cref="BaseAddress"/>.</summary>
    public void WriteTo(GuestMemory memory) => memory.Write(BaseAddress, Image);

    /// <summary>The DSDT: \_SB.PCI0 with its resources and _PRT, legacy ISA devices, \_S3 and \_S5.</summary>
    public static byte[] BuildDsdt(AcpiPlatform platform)
    {
        var aml = new AmlBuilder();
        aml.Scope("\\_SB", sb =>
        {
            sb.Device("PCI0", pci =>
            {
                pci.Name("_HID", v => v.EisaId("PNP0A03"));
                pci.Name("_CID", v => v.EisaId("PNP0A03"));
                pci.Name("_UID", v => v.Integer(0));
                pci.Name("_SEG", v => v.Integer(0));
                pci.Name("_BBN", v => v.Integer(0));
                pci.Name("_CRS", v => v.ResourceTemplate(r =>
                {
                    r.WordBusNumber(0x00, 0xFF);
                    r.Io(0x0CF8, 0x0CF8, 1, 8);
                    r.WordIo(0x0000, 0x0CF7);
                    r.WordIo(0x0D00, 0xFFFF);
                    r.DWordMemory(platform.PciMmio32.Start, platform.PciMmio32.End);
                    if (platform.PciMmio64 is (ulong start, ulong end))
                    {
                        r.QWordMemory(start, end);
                    }
                }));
                pci.Name("_PRT", v => v.Package(routes =>
                {
                    foreach (AcpiPciRoute route in platform.PciRoutes)
                    {
                        // Address: device in the high word, any function; pin 0 is INTA#; source 0: a GSI.
                        routes.Package(e => e.Integer(((ulong)route.Slot << 16) | 0xFFFF).Integer((ulong)(route.Pin - 1)).Integer(0).Integer(route.Gsi));
                    }
                }));
            });

            if (platform.HasSerialPort)
            {
                sb.Device("COM1", d =>
                {
                    d.Name("_HID", v => v.EisaId("PNP0501"));
                    d.Name("_UID", v => v.Integer(1));
                    d.Method("_STA", 0, false, m => m.Return(v => v.Integer(0x0F)));
                    d.Name("_CRS", v => v.ResourceTemplate(r => r.Io(0x3F8, 0x3F8, 1, 8).Interrupt(levelTriggered: false, activeLow: false, shared: false, 4)));
                });
            }

            if (platform.HasI8042)
            {
                sb.Device("PS2K", d =>
                {
                    d.Name("_HID", v => v.EisaId("PNP0303"));
                    d.Method("_STA", 0, false, m => m.Return(v => v.Integer(0x0F)));
                    d.Name("_CRS", v => v.ResourceTemplate(r => r.Io(0x60, 0x60, 1, 1).Io(0x64, 0x64, 1, 1).Interrupt(false, false, false, 1)));
                });
                sb.Device("PS2M", d =>
                {
                    d.Name("_HID", v => v.EisaId("PNP0F13"));
                    d.Method("_STA", 0, false, m => m.Return(v => v.Integer(0x0F)));
                    d.Name("_CRS", v => v.ResourceTemplate(r => r.Interrupt(false, false, false, 12)));
                });
            }
        });

        // Suspend to RAM and soft-off: SLP_TYPa, SLP_TYPb, reserved, reserved.
        aml.Name("\\_S3", v => v.Package(p => p.Integer(AcpiPmDevice.S3SleepType).Integer(AcpiPmDevice.S3SleepType).Integer(0).Integer(0)));
        aml.Name("\\_S5", v => v.Package(p => p.Integer(AcpiPmDevice.S5SleepType).Integer(AcpiPmDevice.S5SleepType).Integer(0).Integer(0)));

        var table = new AcpiTableWriter("DSDT", 2);
        table.AppendBytes(aml.ToArray());
        return table.Finish();
    }

    private static byte[] BuildFadt(AcpiPlatform p, ulong facs, ulong dsdt)
    {
        ushort pm1Event = (ushort)(p.PmIoBase + AcpiPmDevice.Pm1EventOffset);
        ushort pm1Control = (ushort)(p.PmIoBase + AcpiPmDevice.Pm1ControlOffset);
        ushort pmTimer = (ushort)(p.PmIoBase + AcpiPmDevice.PmTimerOffset);
        ushort reset = (ushort)(p.PmIoBase + AcpiPmDevice.ResetOffset);

        var t = new AcpiTableWriter("FACP", FadtRevision);
        t.AppendU32((uint)facs);
        t.AppendU32((uint)dsdt);
        t.AppendU8(0); // reserved
        t.AppendU8(0); // preferred PM profile: unspecified
        t.AppendU16(p.SciIrq);
        t.AppendU32(0); // SMI_CMD: none, the platform is always in ACPI mode
        t.AppendU8(0); // ACPI_ENABLE
        t.AppendU8(0); // ACPI_DISABLE
        t.AppendU8(0); // S4BIOS_REQ
        t.AppendU8(0); // PSTATE_CNT
        t.AppendU32(pm1Event);
        t.AppendU32(0); // PM1b event
        t.AppendU32(pm1Control);
        t.AppendU32(0); // PM1b control
        t.AppendU32(0); // PM2 control
        t.AppendU32(pmTimer);
        t.AppendU32(0); // GPE0
        t.AppendU32(0); // GPE1
        t.AppendU8(AcpiPmDevice.Pm1EventLength);
        t.AppendU8(AcpiPmDevice.Pm1ControlLength);
        t.AppendU8(0); // PM2_CNT_LEN
        t.AppendU8(AcpiPmDevice.PmTimerLength);
        t.AppendU8(0); // GPE0_BLK_LEN
        t.AppendU8(0); // GPE1_BLK_LEN
        t.AppendU8(0); // GPE1_BASE
        t.AppendU8(0); // CST_CNT
        t.AppendU16(101); // P_LVL2_LAT > 100: no C2
        t.AppendU16(1001); // P_LVL3_LAT > 1000: no C3
        t.AppendU16(0); // FLUSH_SIZE
        t.AppendU16(0); // FLUSH_STRIDE
        t.AppendU8(0); // DUTY_OFFSET
        t.AppendU8(0); // DUTY_WIDTH
        t.AppendU8(0); // DAY_ALRM
        t.AppendU8(0); // MON_ALRM
        t.AppendU8(p.HasCmosRtc ? (byte)0x32 : (byte)0); // CENTURY
        t.AppendU16(BootArchitectureFlags(p));
        t.AppendU8(0); // reserved
        t.AppendU32(FadtFlags);
        t.AppendGas(GasSystemIo, 8, AccessByte, reset);
        t.AppendU8(AcpiPmDevice.ResetValue);
        t.AppendU16(0); // ARM_BOOT_ARCH
        t.AppendU8(FadtMinorRevision);
        t.AppendU64(facs); // X_FIRMWARE_CTRL
        t.AppendU64(dsdt); // X_DSDT
        t.AppendGas(GasSystemIo, AcpiPmDevice.Pm1EventLength * 8, AccessWord, pm1Event);
        t.AppendGas(0, 0, 0, 0); // X_PM1b event
        t.AppendGas(GasSystemIo, AcpiPmDevice.Pm1ControlLength * 8, AccessWord, pm1Control);
        t.AppendGas(0, 0, 0, 0); // X_PM1b control
        t.AppendGas(0, 0, 0, 0); // X_PM2 control
        t.AppendGas(GasSystemIo, AcpiPmDevice.PmTimerLength * 8, AccessDWord, pmTimer);
        t.AppendGas(0, 0, 0, 0); // X_GPE0
        t.AppendGas(0, 0, 0, 0); // X_GPE1
        t.AppendGas(GasSystemMemory, 0, 0, 0); // SLEEP_CONTROL_REG (hardware-reduced only)
        t.AppendGas(GasSystemMemory, 0, 0, 0); // SLEEP_STATUS_REG
        t.Append("SHRPVSOR", 8); // hypervisor vendor identity
        return t.Finish();
    }

    /// <summary>WBINVD, PROC_C1, no fixed sleep button (the power button is fixed), TMR_VAL_EXT, RESET_REG_SUP.</summary>
    public const uint FadtFlags = (1u << 0) | (1u << 2) | (1u << 5) | (1u << 8) | (1u << 10);

    private static ushort BootArchitectureFlags(AcpiPlatform p)
    {
        ushort flags = 1 << 2; // VGA not present
        if (p.HasSerialPort || p.HasI8042)
        {
            flags |= 1 << 0; // legacy devices
        }

        if (p.HasI8042)
        {
            flags |= 1 << 1; // 8042
        }

        if (!p.HasCmosRtc)
        {
            flags |= 1 << 5; // CMOS RTC not present
        }

        return flags;
    }

    private static byte[] BuildFacs()
    {
        byte[] facs = new byte[FacsLength];
        "FACS"u8.CopyTo(facs);
        BinaryPrimitives.WriteUInt32LittleEndian(facs.AsSpan(4), FacsLength);
        facs[32] = 2; // version
        return facs;
    }

    private static byte[] BuildMadt(AcpiPlatform p)
    {
        var t = new AcpiTableWriter("APIC", 5);
        t.AppendU32(p.LocalApicAddress);
        t.AppendU32(1); // PCAT_COMPAT: the 8259 pair exists and must be masked
        for (int cpu = 0; cpu < p.VcpuCount; cpu++)
        {
            t.AppendBytes([0, 8, (byte)cpu, (byte)cpu]); // Processor Local APIC: UID, APIC ID
            t.AppendU32(1); // enabled
        }

        t.AppendBytes([1, 12, p.IoApicId, 0]);
        t.AppendU32(p.IoApicAddress);
        t.AppendU32(0); // GSI base

        // No override for ISA IRQ 0: the PIT drives I/O APIC pin 0, as KVM's default GSI routing and
        // the emulator's SoftwareIrqChip both wire it (QEMU's IRQ 0 -> GSI 2 override would be wrong for both).

        // SCI: level-triggered, active-high (ISA IRQs default to edge/high, so say so).
        t.AppendBytes([2, 10, 0, p.SciIrq]);
        t.AppendU32(p.SciIrq);
        t.AppendU16(0x000D);

        // LINT1 of every local APIC is the NMI input.
        t.AppendBytes([4, 6, 0xFF]);
        t.AppendU16(0);
        t.AppendU8(1);
        return t.Finish();
    }

    private static byte[] BuildXsdt(ulong[] entries)
    {
        var t = new AcpiTableWriter("XSDT", 1);
        foreach (ulong e in entries)
        {
            t.AppendU64(e);
        }

        return t.Finish();
    }

    private static byte[] BuildRsdt(uint[] entries)
    {
        var t = new AcpiTableWriter("RSDT", 1);
        foreach (uint e in entries)
        {
            t.AppendU32(e);
        }

        return t.Finish();
    }

    private static byte[] BuildRsdp(uint rsdt, ulong xsdt)
    {
        byte[] rsdp = new byte[RsdpLength];
        "RSD PTR "u8.CopyTo(rsdp);
        "SHRPVS"u8.CopyTo(rsdp.AsSpan(9));
        rsdp[15] = 2; // revision: ACPI 2.0+ with XSDT
        BinaryPrimitives.WriteUInt32LittleEndian(rsdp.AsSpan(16), rsdt);
        BinaryPrimitives.WriteUInt32LittleEndian(rsdp.AsSpan(20), RsdpLength);
        BinaryPrimitives.WriteUInt64LittleEndian(rsdp.AsSpan(24), xsdt);
        rsdp[8] = AcpiTableWriter.Checksum(rsdp.AsSpan(0, 20));
        rsdp[32] = AcpiTableWriter.Checksum(rsdp);
        return rsdp;
    }

    private static ulong Align(ulong value) => (value + 15) & ~15UL;
}
