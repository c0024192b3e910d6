using System.Buffers.Binary;
using System.Text;
using SharpVisor.Boot.Acpi;
using SharpVisor.Memory;

namespace SharpVisor.Boot.Tests.Acpi;

public sealed class AcpiTablesTests
{
    private static readonly AcpiPlatform s_platform = new()
    {
        VcpuCount = 4,
        PciRoutes = [new AcpiPciRoute(1, 1, 17), new AcpiPciRoute(2, 1, 18)],
        PciMmio64 = (0x80_0000_0000, 0xFF_FFFF_FFFF),
    };

    private static string Signature(byte[] table) => Encoding.ASCII.GetString(table, 0, 4);

    private static byte Sum(ReadOnlySpan<byte> data)
    {
        byte sum = 0;
        foreach (byte b in data)
        {
            sum += b;
        }

        return sum;
    }

    [Fact]
    public void EveryTableChecksumsToZeroAndStatesItsLength()
    {
        AcpiTables t = AcpiTables.Build(s_platform);
        foreach (byte[] table in new[] { t.Dsdt, t.Fadt, t.Madt, t.Xsdt, t.Rsdt })
        {
            Assert.Equal(0, Sum(table));
            Assert.Equal((uint)table.Length, BinaryPrimitives.ReadUInt32LittleEndian(table.AsSpan(4)));
            Assert.Equal("SHRPVS", Encoding.ASCII.GetString(table, 10, 6));
        }

        Assert.Equal(0, Sum(t.Rsdp.AsSpan(0, 20)));
        Assert.Equal(0, Sum(t.Rsdp));
        Assert.Equal(2, t.Rsdp[15]);
        Assert.Equal(36u, BinaryPrimitives.ReadUInt32LittleEndian(t.Rsdp.AsSpan(20)));
    }

    [Fact]
    public void LinuxFindsTheRsdpByScanningTheBiosAreaAndWalksToEveryTable()
    {
        using GuestMemory memory = GuestMemory.CreateRam(16 << 20);
        AcpiTables t = AcpiTables.Build(s_platform);
        t.WriteTo(memory);

        // Linux's acpi_find_root_pointer: 16-byte steps over 0xE0000-0xFFFFF, signature and checksum.
        ulong rsdp = 0;
        for (ulong a = 0xE0000; a < 0x100000; a += 16)
        {
            if (memory.GetSpan(a, 8).SequenceEqual("RSD PTR "u8) && Sum(memory.GetSpan(a, 20)) == 0)
            {
                rsdp = a;
                break;
            }
        }

        Assert.Equal(t.RsdpAddress, rsdp);
        ulong xsdt = memory.Read<ulong>(rsdp + 24);
        Assert.Equal("XSDT"u8.ToArray(), memory.GetSpan(xsdt, 4).ToArray());
        uint xsdtLength = memory.Read<uint>(xsdt + 4);
        var found = new List<string>();
        for (ulong e = xsdt + 36; e < xsdt + xsdtLength; e += 8)
        {
            ulong table = memory.Read<ulong>(e);
            uint length = memory.Read<uint>(table + 4);
            Assert.Equal(0, Sum(memory.GetSpan(table, (int)length)));
            found.Add(Encoding.ASCII.GetString(memory.GetSpan(table, 4)));
            if (found[^1] == "FACP")
            {
                ulong dsdt = memory.Read<ulong>(table + 140);
                Assert.Equal("DSDT"u8.ToArray(), memory.GetSpan(dsdt, 4).ToArray());
                Assert.Equal(0, Sum(memory.GetSpan(dsdt, (int)memory.Read<uint>(dsdt + 4))));
                ulong facs = memory.Read<ulong>(table + 132);
                Assert.Equal(0UL, facs % 64);
                Assert.Equal("FACS"u8.ToArray(), memory.GetSpan(facs, 4).ToArray());
            }
        }

        Assert.Equal(["FACP", "APIC"], found);
        Assert.True(t.BaseAddress + (ulong)t.Image.Length <= AcpiTables.BiosAreaEnd);

        // The RSDT lists the same tables with 32-bit pointers.
        ulong rsdt = memory.Read<uint>(rsdp + 16);
        Assert.Equal((uint)t.Addresses["FACP"], memory.Read<uint>(rsdt + 36));
        Assert.Equal((uint)t.Addresses["APIC"], memory.Read<uint>(rsdt + 40));
    }

    [Fact]
    public void FadtDescribesThePmBlockResetRegisterAndSci()
    {
        byte[] f = AcpiTables.Build(s_platform).Fadt;
        Assert.Equal("FACP", Signature(f));
        Assert.Equal(276, f.Length);
        Assert.Equal(6, f[8]);
        Assert.Equal(9, BinaryPrimitives.ReadUInt16LittleEndian(f.AsSpan(46)));
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(f.AsSpan(48))); // no SMI_CMD
        Assert.Equal(0x600u, BinaryPrimitives.ReadUInt32LittleEndian(f.AsSpan(56)));
        Assert.Equal(0x604u, BinaryPrimitives.ReadUInt32LittleEndian(f.AsSpan(64)));
        Assert.Equal(0x608u, BinaryPrimitives.ReadUInt32LittleEndian(f.AsSpan(76)));
        Assert.Equal([4, 2, 0, 4], f[88..92]);
        uint flags = BinaryPrimitives.ReadUInt32LittleEndian(f.AsSpan(112));
        Assert.Equal(0u, flags & (1u << 4)); // PWR_BUTTON clear: the fixed power button exists
        Assert.NotEqual(0u, flags & (1u << 10)); // RESET_REG_SUP
        Assert.Equal(0u, flags & (1u << 20)); // not hardware-reduced
        Assert.Equal([1, 8, 0, 1], f[116..120]); // reset register: I/O, 8 bits, byte access
        Assert.Equal(0x60CUL, BinaryPrimitives.ReadUInt64LittleEndian(f.AsSpan(120)));
        Assert.Equal(AcpiPmDevice.ResetValue, f[128]);
        Assert.Equal(0b11u, BinaryPrimitives.ReadUInt16LittleEndian(f.AsSpan(109)) & 0b11u); // legacy devices, 8042

        // The 64-bit blocks agree with the 32-bit ones (Linux warns on a mismatch).
        Assert.Equal([1, 32, 0, 2], f[148..152]);
        Assert.Equal(0x600UL, BinaryPrimitives.ReadUInt64LittleEndian(f.AsSpan(152)));
        Assert.Equal([1, 16, 0, 2], f[172..176]);
        Assert.Equal(0x604UL, BinaryPrimitives.ReadUInt64LittleEndian(f.AsSpan(176)));
        Assert.Equal(0x608UL, BinaryPrimitives.ReadUInt64LittleEndian(f.AsSpan(212)));
        Assert.Equal((ulong)BinaryPrimitives.ReadUInt32LittleEndian(f.AsSpan(40)), BinaryPrimitives.ReadUInt64LittleEndian(f.AsSpan(140)));
    }

    [Fact]
    public void MadtListsEveryCpuTheIoApicAndTheSciOverride()
    {
        byte[] m = AcpiTables.Build(s_platform).Madt;
        Assert.Equal(0xFEE0_0000u, BinaryPrimitives.ReadUInt32LittleEndian(m.AsSpan(36)));
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(m.AsSpan(40)));
        var entries = new List<byte[]>();
        for (int at = 44; at < m.Length; at += m[at + 1])
        {
            entries.Add(m[at..(at + m[at + 1])]);
        }

        byte[][] cpus = entries.Where(e => e[0] == 0).ToArray();
        Assert.Equal(4, cpus.Length);
        for (int i = 0; i < 4; i++)
        {
            Assert.Equal([0, 8, (byte)i, (byte)i, 1, 0, 0, 0], cpus[i]);
        }

        byte[] ioapic = entries.Single(e => e[0] == 1);
        Assert.Equal(0xFEC0_0000u, BinaryPrimitives.ReadUInt32LittleEndian(ioapic.AsSpan(4)));
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(ioapic.AsSpan(8)));

        // IRQ 0 has no override: the PIT is on I/O APIC pin 0 with KVM's default routing and on the emulator.
        byte[] sciOverride = Assert.Single(entries, e => e[0] == 2);
        Assert.Equal([2, 10, 0, 9, 9, 0, 0, 0, 0x0D, 0], sciOverride); // SCI: level, active-high
        Assert.Equal([4, 6, 0xFF, 0, 0, 1], entries.Single(e => e[0] == 4));
    }

    [Fact]
    public void DsdtDescribesThePciRootBridgeLegacyDevicesAndS5()
    {
        byte[] dsdt = AcpiTables.Build(s_platform).Dsdt;
        Assert.Equal("DSDT", Signature(dsdt));
        Assert.Equal(2, dsdt[8]);
        AmlReader.Node root = AmlReader.Parse(dsdt[36..]);

        AmlReader.Node s5 = root.Child("\\_S5_").Value;
        Assert.Equal("Package", s5.Kind);
        Assert.Equal(new ulong?[] { 5, 5, 0, 0 }, s5.Children.Select(c => c.Integer));
        AmlReader.Node s3 = root.Child("\\_S3_").Value;
        Assert.Equal(new ulong?[] { 1, 1, 0, 0 }, s3.Children.Select(c => c.Integer));

        AmlReader.Node sb = root.Child("\\_SB_");
        AmlReader.Node pci = sb.Child("PCI0");
        Assert.Equal("Device", pci.Kind);
        Assert.Equal(AmlBuilder.EncodeEisaId("PNP0A03"), pci.Child("_HID").Value.Integer);
        Assert.Equal(AmlBuilder.EncodeEisaId("PNP0A03"), pci.Child("_CID").Value.Integer);
        Assert.Equal(0UL, pci.Child("_UID").Value.Integer);
        Assert.Equal(0UL, pci.Child("_SEG").Value.Integer);
        Assert.Equal(0UL, pci.Child("_BBN").Value.Integer);

        byte[] crs = pci.Child("_CRS").Value.Data!;
        byte[] expected =
        [
            .. new AmlResourceTemplate().WordBusNumber(0, 0xFF).Io(0xCF8, 0xCF8, 1, 8).WordIo(0, 0xCF7).WordIo(0xD00, 0xFFFF)
                .DWordMemory(0xC000_0000, 0xFEBF_FFFF).QWordMemory(0x80_0000_0000, 0xFF_FFFF_FFFF).ToArray(),
        ];
        Assert.Equal(expected, crs);

        AmlReader.Node prt = pci.Child("_PRT").Value;
        Assert.Equal(2, prt.Children.Count);
        Assert.Equal(new ulong?[] { 0x1FFFF, 0, 0, 17 }, prt.Children[0].Children.Select(c => c.Integer));
        Assert.Equal(new ulong?[] { 0x2FFFF, 0, 0, 18 }, prt.Children[1].Children.Select(c => c.Integer));

        AmlReader.Node com1 = sb.Child("COM1");
        Assert.Equal(AmlBuilder.EncodeEisaId("PNP0501"), com1.Child("_HID").Value.Integer);
        AmlReader.Node sta = com1.Child("_STA");
        Assert.Equal("Method", sta.Kind);
        Assert.Equal(0x0FUL, sta.Children.Single().Value.Integer);
        Assert.Equal(new AmlResourceTemplate().Io(0x3F8, 0x3F8, 1, 8).Interrupt(false, false, false, 4).ToArray(), com1.Child("_CRS").Value.Data);

        Assert.Equal(AmlBuilder.EncodeEisaId("PNP0303"), sb.Child("PS2K").Child("_HID").Value.Integer);
        Assert.Equal(AmlBuilder.EncodeEisaId("PNP0F13"), sb.Child("PS2M").Child("_HID").Value.Integer);
    }

    [Fact]
    public void LegacyDevicesCanBeLeftOut()
    {
        var platform = new AcpiPlatform { HasSerialPort = false, HasI8042 = false, HasCmosRtc = true };
        AcpiTables t = AcpiTables.Build(platform);
        AmlReader.Node sb = AmlReader.Parse(t.Dsdt[36..]).Child("\\_SB_");
        Assert.Equal(["PCI0"], sb.Children.Select(c => c.Name));
        Assert.Equal(0, BinaryPrimitives.ReadUInt16LittleEndian(t.Fadt.AsSpan(109)) & 0b10_0011);
        Assert.Equal(0x32, t.Fadt[108]);
    }

    [Fact]
    public void RejectsImpossiblePlatforms()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => AcpiTables.Build(new AcpiPlatform { VcpuCount = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => AcpiTables.Build(new AcpiPlatform { VcpuCount = 300 }));
        Assert.Throws<ArgumentException>(() => AcpiTables.Build(new AcpiPlatform(), 0xE0010));
    }
}
