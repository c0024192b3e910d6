using SharpVisor.Boot.Acpi;

namespace SharpVisor.Boot.Tests.Acpi;

/// <summary>Exact encodings checked by hand against ACPI 6.5 §20 and iasl's output for the same ASL.</summary>
public sealed class AmlBuilderTests
{
    [Theory]
    [InlineData(0, new byte[] { 0x01 })]
    [InlineData(62, new byte[] { 0x3F })]
    [InlineData(63, new byte[] { 0x41, 0x04 })] // 65 = 0x041: lead 01_00_0001, then 0x04
    [InlineData(0xFFD, new byte[] { 0x4F, 0xFF })] // 0xFFF fits two bytes exactly
    [InlineData(0xFFE, new byte[] { 0x81, 0x00, 0x01 })] // 0x1001 needs three
    [InlineData(0x12345, new byte[] { 0x88, 0x34, 0x12 })] // 0x12348
    public void PkgLengthCountsItselfAndPicksTheShortestForm(int body, byte[] expected) =>
        Assert.Equal(expected, AmlBuilder.EncodePkgLength(body));

    [Theory]
    [InlineData("PNP0A03", 0x030AD041u)]
    [InlineData("PNP0501", 0x0105D041u)]
    [InlineData("PNP0C0C", 0x0C0CD041u)]
    [InlineData("PNP0303", 0x0303D041u)]
    public void EisaIdMatchesIasl(string id, uint expected) => Assert.Equal(expected, AmlBuilder.EncodeEisaId(id));

    [Fact]
    public void NameStrings()
    {
        Assert.Equal("_HID"u8.ToArray(), AmlBuilder.EncodeNameString("_HID"));
        Assert.Equal("_S5_"u8.ToArray(), AmlBuilder.EncodeNameString("_S5"));
        Assert.Equal([0x5C, .. "_S5_"u8], AmlBuilder.EncodeNameString("\\_S5"));
        Assert.Equal([0x5C, 0x2E, .. "_SB_PCI0"u8], AmlBuilder.EncodeNameString("\\_SB.PCI0"));
        Assert.Equal([0x2F, 0x03, .. "A___B___C___"u8], AmlBuilder.EncodeNameString("A.B.C"));
        Assert.Equal([0x5E, .. "PCI0"u8], AmlBuilder.EncodeNameString("^PCI0"));
        Assert.Equal([0x5C, 0x00], AmlBuilder.EncodeNameString("\\"));
        Assert.Throws<ArgumentException>(() => AmlBuilder.EncodeNameString("TOOLONG"));
        Assert.Throws<ArgumentException>(() => AmlBuilder.EncodeNameString("1ABC"));
        Assert.Throws<ArgumentException>(() => AmlBuilder.EncodeNameString("a"));
    }

    [Theory]
    [InlineData(0UL, new byte[] { 0x00 })]
    [InlineData(1UL, new byte[] { 0x01 })]
    [InlineData(0x0FUL, new byte[] { 0x0A, 0x0F })]
    [InlineData(0x100UL, new byte[] { 0x0B, 0x00, 0x01 })]
    [InlineData(0x0001FFFFUL, new byte[] { 0x0C, 0xFF, 0xFF, 0x01, 0x00 })]
    [InlineData(0x1_0000_0000UL, new byte[] { 0x0E, 0, 0, 0, 0, 1, 0, 0, 0 })]
    [InlineData(ulong.MaxValue, new byte[] { 0xFF })]
    public void IntegersUseTheShortestConstant(ulong value, byte[] expected) =>
        Assert.Equal(expected, new AmlBuilder().Integer(value).ToArray());

    [Fact]
    public void NameWithEisaIdAndString()
    {
        // Name (_HID, EisaId ("PNP0A03"))
        Assert.Equal([0x08, .. "_HID"u8, 0x0C, 0x41, 0xD0, 0x0A, 0x03], new AmlBuilder().Name("_HID", v => v.EisaId("PNP0A03")).ToArray());

        // Name (_STR, "ab")
        Assert.Equal([0x08, .. "_STR"u8, 0x0D, (byte)'a', (byte)'b', 0x00], new AmlBuilder().Name("_STR", v => v.String("ab")).ToArray());
    }

    [Fact]
    public void MethodReturningAConstant()
    {
        // Method (_STA, 0, NotSerialized) { Return (0x0F) }
        Assert.Equal([0x14, 0x09, .. "_STA"u8, 0x00, 0xA4, 0x0A, 0x0F], new AmlBuilder().Method("_STA", 0, false, m => m.Return(v => v.Integer(0x0F))).ToArray());
        Assert.Equal(0x0B, new AmlBuilder().Method("_XYZ", 3, true, m => { }).ToArray()[6]);
    }

    [Fact]
    public void ScopeDeviceAndPackage()
    {
        // Name (\_S5, Package (0x04) { 5, 5, Zero, Zero })
        Assert.Equal(
            [0x08, 0x5C, .. "_S5_"u8, 0x12, 0x08, 0x04, 0x0A, 0x05, 0x0A, 0x05, 0x00, 0x00],
            new AmlBuilder().Name("\\_S5", v => v.Package(p => p.Integer(5).Integer(5).Integer(0).Integer(0))).ToArray());

        // Scope (\_SB) { Device (PCI0) { Name (_UID, Zero) } }
        Assert.Equal(
            [0x10, 0x13, 0x5C, .. "_SB_"u8, 0x5B, 0x82, 0x0B, .. "PCI0"u8, 0x08, .. "_UID"u8, 0x00],
            new AmlBuilder().Scope("\\_SB", s => s.Device("PCI0", d => d.Name("_UID", v => v.Integer(0)))).ToArray());
    }

    [Fact]
    public void BufferCarriesItsSize()
    {
        Assert.Equal([0x11, 0x05, 0x0A, 0x02, 0xAA, 0xBB], new AmlBuilder().Buffer([0xAA, 0xBB]).ToArray());
    }

    [Fact]
    public void ResourceDescriptorsMatchTheirIaslEncodings()
    {
        // WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode, 0x0000, 0x0000, 0x00FF, 0x0000, 0x0100)
        Assert.Equal(
            new byte[] { 0x88, 0x0D, 0x00, 0x02, 0x0C, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF, 0x00, 0x00, 0x00, 0x00, 0x01, 0x79, 0x00 },
            new AmlResourceTemplate().WordBusNumber(0, 0xFF).ToArray());

        // WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange, 0x0000, 0x0000, 0x0CF7, 0x0000, 0x0CF8)
        Assert.Equal(
            new byte[] { 0x88, 0x0D, 0x00, 0x01, 0x0C, 0x03, 0x00, 0x00, 0x00, 0x00, 0xF7, 0x0C, 0x00, 0x00, 0xF8, 0x0C, 0x79, 0x00 },
            new AmlResourceTemplate().WordIo(0, 0xCF7).ToArray());

        // IO (Decode16, 0x0CF8, 0x0CF8, 0x01, 0x08)
        Assert.Equal(new byte[] { 0x47, 0x01, 0xF8, 0x0C, 0xF8, 0x0C, 0x01, 0x08, 0x79, 0x00 }, new AmlResourceTemplate().Io(0xCF8, 0xCF8, 1, 8).ToArray());

        // DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite, 0, 0xC0000000, 0xFEBFFFFF, 0, 0x3EC00000)
        Assert.Equal(
            new byte[]
            {
                0x87, 0x17, 0x00, 0x00, 0x0C, 0x01, 0, 0, 0, 0, 0x00, 0x00, 0x00, 0xC0, 0xFF, 0xFF, 0xBF, 0xFE, 0, 0, 0, 0, 0x00, 0x00, 0xC0, 0x3E, 0x79, 0x00,
            },
            new AmlResourceTemplate().DWordMemory(0xC000_0000, 0xFEBF_FFFF).ToArray());

        // QWordMemory (..., Cacheable, ReadWrite, 0, 0x8000000000, 0xFFFFFFFFFF, 0, 0x8000000000)
        byte[] q = new AmlResourceTemplate().QWordMemory(0x80_0000_0000, 0xFF_FFFF_FFFF, cacheable: true).ToArray();
        Assert.Equal(new byte[] { 0x8A, 0x2B, 0x00, 0x00, 0x0C, 0x03 }, q[..6]);
        Assert.Equal(0x80_0000_0000UL, BitConverter.ToUInt64(q, 14));
        Assert.Equal(0xFF_FFFF_FFFFUL, BitConverter.ToUInt64(q, 22));
        Assert.Equal(0x80_0000_0000UL, BitConverter.ToUInt64(q, 38));
        Assert.Equal(46 + 2, q.Length);

        // Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) { 4 }
        Assert.Equal(new byte[] { 0x89, 0x06, 0x00, 0x03, 0x01, 0x04, 0x00, 0x00, 0x00, 0x79, 0x00 }, new AmlResourceTemplate().Interrupt(false, false, false, 4).ToArray());

        // Interrupt (ResourceConsumer, Level, ActiveLow, Shared) { 16, 17 }
        Assert.Equal(new byte[] { 0x89, 0x0A, 0x00, 0x0D, 0x02, 16, 0, 0, 0, 17, 0, 0, 0, 0x79, 0x00 }, new AmlResourceTemplate().Interrupt(true, true, true, 16, 17).ToArray());
    }

    [Fact]
    public void LargeBodiesGetMultiBytePkgLengthsThatParseBack()
    {
        var aml = new AmlBuilder().Scope("\\_SB", s =>
        {
            for (int i = 0; i < 200; i++)
            {
                s.Name($"N{i:X3}", v => v.Integer((ulong)i * 1000));
            }
        }).ToArray();
        AmlReader.Node root = AmlReader.Parse(aml);
        AmlReader.Node scope = root.Children.Single();
        Assert.Equal(200, scope.Children.Count);
        Assert.Equal(199_000UL, scope.Child("N0C7").Value.Integer);
    }
}
