using SharpVisor.Devices.Pci;

namespace SharpVisor.Devices.Tests.Pci;

public sealed class PciBusTests
{
    [Fact]
    public void HostBridgeAnswersAtSlotZeroAndEmptySlotsReadAllOnes()
    {
        using var p = new TestPlatform();
        Assert.Equal(0x0D57_8086u, p.ConfigRead32(0, 0));
        Assert.Equal(0x06u, p.ConfigRead32(0, 8) >> 24);
        Assert.Equal(0xFFFF_FFFFu, p.ConfigRead32(5, 0));
    }

    [Fact]
    public void AddressRegisterReadsBackAndDisabledCyclesReadAllOnes()
    {
        using var p = new TestPlatform();
        p.PortIo.Write(0xCF8, BitConverter.GetBytes(0x8000_0804u));
        Span<byte> data = stackalloc byte[4];
        p.PortIo.Read(0xCF8, data);
        Assert.Equal(0x8000_0804u, BitConverter.ToUInt32(data));

        p.PortIo.Write(0xCF8, BitConverter.GetBytes(0x0000_0000u)); // enable bit clear
        p.PortIo.Read(0xCFC, data);
        Assert.Equal(0xFFFF_FFFFu, BitConverter.ToUInt32(data));

        p.PortIo.Write(0xCF8, BitConverter.GetBytes(0x8001_0000u)); // bus 1 does not exist
        p.PortIo.Read(0xCFC, data);
        Assert.Equal(0xFFFF_FFFFu, BitConverter.ToUInt32(data));
    }

    [Fact]
    public void SubDwordAccessesReachTheRightBytes()
    {
        using var p = new TestPlatform();
        Assert.Equal(0x8086, p.ConfigRead16(0, 0));
        Assert.Equal(0x0D57, p.ConfigRead16(0, 2));
        Assert.Equal(0x57, p.ConfigRead8(0, 2));
        Assert.Equal(0x0D, p.ConfigRead8(0, 3));
    }

    [Fact]
    public void ReadOnlyHeaderFieldsIgnoreWrites()
    {
        using var p = new TestPlatform();
        int slot = p.Pci.Attach(new TestPciDevice());
        p.ConfigWrite32(slot, 0, 0xDEAD_BEEF);
        p.ConfigWrite32(slot, 8, 0xDEAD_BEEF);
        Assert.Equal(0x5678_1234u, p.ConfigRead32(slot, 0));
        Assert.Equal(0xFF00_0000u, p.ConfigRead32(slot, 8));
        p.ConfigWrite8(slot, PciConfigSpace.InterruptLine, 0x42);
        Assert.Equal(0x42, p.ConfigRead8(slot, PciConfigSpace.InterruptLine));
    }

    [Fact]
    public void VmmPlacesBarsNaturallyAlignedInsideTheWindowWithoutOverlap()
    {
        using var p = new TestPlatform();
        var a = new TestPciDevice("a");
        var b = new TestPciDevice("b");
        p.Pci.Attach(a);
        p.Pci.Attach(b);
        PciBar[] bars = [a.Registers, a.MsixBar, b.Registers, b.MsixBar];
        foreach (PciBar bar in bars)
        {
            Assert.Equal(0UL, bar.Address % bar.Size);
            Assert.True(p.Pci.Layout.Mmio32.Contains(bar.Address, bar.Size));
        }

        for (int i = 0; i < bars.Length; i++)
        {
            for (int j = i + 1; j < bars.Length; j++)
            {
                Assert.False(bars[i].Address < bars[j].Address + bars[j].Size && bars[j].Address < bars[i].Address + bars[i].Size);
            }
        }
    }

    [Fact]
    public void WritingAllOnesToABarReadsBackItsSizeMask()
    {
        using var p = new TestPlatform();
        var d = new TestPciDevice();
        int slot = p.Pci.Attach(d);
        uint original = p.ConfigRead32(slot, 0x10);

        p.ConfigWrite32(slot, 0x10, 0xFFFF_FFFF);
        Assert.Equal(0xFFFF_F000u, p.ConfigRead32(slot, 0x10));
        p.ConfigWrite32(slot, 0x10, original);
        Assert.Equal(original, p.ConfigRead32(slot, 0x10));

        // 64-bit BAR 2/3: type bits 0b100 stay, the upper half is fully writable for a 16 KiB BAR.
        p.ConfigWrite32(slot, 0x18, 0xFFFF_FFFF);
        p.ConfigWrite32(slot, 0x1C, 0xFFFF_FFFF);
        Assert.Equal(0xFFFF_C004u, p.ConfigRead32(slot, 0x18));
        Assert.Equal(0xFFFF_FFFFu, p.ConfigRead32(slot, 0x1C));

        // BAR 1 does not exist (nor 4, 5, or the ROM): writes leave zero.
        p.ConfigWrite32(slot, 0x14, 0xFFFF_FFFF);
        Assert.Equal(0u, p.ConfigRead32(slot, 0x14));
        p.ConfigWrite32(slot, 0x30, 0xFFFF_FFFF);
        Assert.Equal(0u, p.ConfigRead32(slot, 0x30));
    }

    [Fact]
    public void BarsDecodeOnlyWithMemorySpaceEnabledAndFollowTheGuestWhenMoved()
    {
        using var p = new TestPlatform();
        var d = new TestPciDevice();
        int slot = p.Pci.Attach(d);
        ulong placed = d.Registers.Address;
        d.RegisterFile[0] = 0x5A;
        var moves = new List<ulong?>();
        d.BarMappingChanged += bar => { if (bar == d.Registers) { moves.Add(bar.MappedAddress); } };

        Assert.Equal(0xFFFF_FFFFu, p.MmioRead32(placed)); // decoding is off after reset
        p.ConfigWrite16(slot, PciConfigSpace.Command, PciConfigSpace.CommandMemorySpace);
        Assert.Equal(0x5Au, p.MmioRead32(placed));

        ulong moved = 0xD000_0000;
        p.ConfigWrite32(slot, 0x10, (uint)moved);
        Assert.Equal(0xFFFF_FFFFu, p.MmioRead32(placed));
        Assert.Equal(0x5Au, p.MmioRead32(moved));
        p.MmioWrite32(moved + 4, 0x1234);
        Assert.Equal(0x34, d.RegisterFile[4]);

        p.ConfigWrite16(slot, PciConfigSpace.Command, 0);
        Assert.Equal(0xFFFF_FFFFu, p.MmioRead32(moved));
        Assert.Equal(new ulong?[] { placed, moved, null }, moves);
    }

    [Fact]
    public void ABarMovedOutsideTheWindowsOrOntoAnotherBarIsNotDecoded()
    {
        using var p = new TestPlatform();
        var a = new TestPciDevice("a");
        var b = new TestPciDevice("b");
        int sa = p.Pci.Attach(a);
        int sb = p.Pci.Attach(b);
        p.ConfigWrite16(sa, PciConfigSpace.Command, PciConfigSpace.CommandMemorySpace);
        p.ConfigWrite16(sb, PciConfigSpace.Command, PciConfigSpace.CommandMemorySpace);

        p.ConfigWrite32(sa, 0x10, 0x0010_0000); // over guest RAM
        Assert.Null(a.Registers.MappedAddress);
        Assert.Contains(p.Log, l => l.Contains("outside the host bridge windows"));

        p.ConfigWrite32(sa, 0x10, (uint)b.Registers.Address); // onto b's BAR
        Assert.Null(a.Registers.MappedAddress);
        Assert.Equal(b.Registers.Address, b.Registers.MappedAddress);
    }

    [Fact]
    public void SizingABarWhileDecodingUnmapsItUntilItIsRestored()
    {
        using var p = new TestPlatform();
        var d = new TestPciDevice();
        int slot = p.Pci.Attach(d);
        p.ConfigWrite16(slot, PciConfigSpace.Command, PciConfigSpace.CommandMemorySpace);
        uint original = p.ConfigRead32(slot, 0x10);
        d.RegisterFile[0] = 0x77;

        p.ConfigWrite32(slot, 0x10, 0xFFFF_FFFF); // 0xFFFFF000: outside the window, so not decoded
        Assert.Null(d.Registers.MappedAddress);
        p.ConfigWrite32(slot, 0x10, original);
        Assert.Equal(0x77u, p.MmioRead32(original));
    }

    [Fact]
    public void A64BitBarCanMoveIntoThe64BitWindow()
    {
        var layout = new PciBusLayout { Mmio64 = new PciWindow(0x80_0000_0000, 0x10_0000_0000) };
        using var p = new TestPlatform(layout: layout);
        var d = new TestPciDevice();
        int slot = p.Pci.Attach(d);
        p.ConfigWrite16(slot, PciConfigSpace.Command, PciConfigSpace.CommandMemorySpace);
        p.ConfigWrite32(slot, 0x18, 0x0000_0004);
        p.ConfigWrite32(slot, 0x1C, 0x80);
        Assert.Equal(0x80_0000_0000UL, d.MsixBar.MappedAddress);
    }

    [Fact]
    public void CapabilityListIsWalkable()
    {
        using var p = new TestPlatform();
        int slot = p.Pci.Attach(new TestPciDevice());
        Assert.NotEqual(0, p.ConfigRead16(slot, PciConfigSpace.Status) & PciConfigSpace.StatusCapabilitiesList);
        int pointer = p.ConfigRead8(slot, PciConfigSpace.CapabilitiesPointer);
        Assert.Equal(0x40, pointer);
        Assert.Equal(MsixCapability.CapabilityId, p.ConfigRead8(slot, pointer));
        Assert.Equal(0, p.ConfigRead8(slot, pointer + 1));
        Assert.Equal(3, p.ConfigRead16(slot, pointer + 2) & 0x7FF); // table size - 1
        Assert.Equal(2u, p.ConfigRead32(slot, pointer + 4)); // BIR 2, offset 0
        Assert.Equal(0x2002u, p.ConfigRead32(slot, pointer + 8));
    }

    [Fact]
    public void IntxLinesSharingAGsiAreOred()
    {
        using var p = new TestPlatform();
        var a = new TestPciDevice("a");
        var b = new TestPciDevice("b");
        p.Pci.Attach(a, 1);
        p.Pci.Attach(b, 9); // (9 + 1 - 1) % 8 == 1: same GSI as slot 1
        uint gsi = p.Pci.IntxGsiOf(a)!.Value;
        Assert.Equal(gsi, p.Pci.IntxGsiOf(b));
        Assert.Equal(gsi, (uint)p.ConfigRead8(1, PciConfigSpace.InterruptLine));

        a.SetIntx(true);
        b.SetIntx(true);
        a.SetIntx(false);
        Assert.True(p.Interrupts.Level(gsi));
        b.SetIntx(false);
        Assert.False(p.Interrupts.Level(gsi));
        Assert.Equal(2, p.Interrupts.LevelChanges.Count);
    }

    [Fact]
    public void IntxRoutesListEveryFunctionWithAPin()
    {
        using var p = new TestPlatform();
        p.Pci.Attach(new TestPciDevice("a"), 3);
        p.Pci.Attach(new TestPciDevice("b"), 12);
        Assert.Equal([(3, 1, 19u), (12, 1, 20u)], p.Pci.IntxRoutes());
    }

    [Fact]
    public void IntxDisableInTheCommandRegisterSilencesThePin()
    {
        using var p = new TestPlatform();
        var a = new TestPciDevice();
        int slot = p.Pci.Attach(a);
        p.ConfigWrite16(slot, PciConfigSpace.Command, PciConfigSpace.CommandIntxDisable);
        a.SetIntx(true);
        Assert.False(p.Interrupts.Level(p.Pci.IntxGsiOf(a)!.Value));
        Assert.NotEqual(0, p.ConfigRead16(slot, PciConfigSpace.Status) & PciConfigSpace.StatusInterrupt);
    }
}
