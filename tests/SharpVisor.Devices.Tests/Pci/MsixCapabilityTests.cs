using SharpVisor.Devices.Pci;

namespace SharpVisor.Devices.Tests.Pci;

public sealed class MsixCapabilityTests
{
    private static (TestPlatform Platform, TestPciDevice Device, int Slot, ulong Table) Setup()
    {
        var p = new TestPlatform();
        var d = new TestPciDevice();
        int slot = p.Pci.Attach(d);
        p.ConfigWrite16(slot, PciConfigSpace.Command, PciConfigSpace.CommandMemorySpace | PciConfigSpace.CommandBusMaster);
        return (p, d, slot, d.MsixBar.Address);
    }

    private static void Program(TestPlatform p, ulong table, int vector, ulong address, uint data, bool masked)
    {
        ulong entry = table + (ulong)(vector * 16);
        p.MmioWrite32(entry, (uint)address);
        p.MmioWrite32(entry + 4, (uint)(address >> 32));
        p.MmioWrite32(entry + 8, data);
        p.MmioWrite32(entry + 12, masked ? 1u : 0u);
    }

    [Fact]
    public void VectorsStartMaskedAndTheTableReadsBack()
    {
        (TestPlatform p, TestPciDevice d, int _, ulong table) = Setup();
        using (p)
        {
            Assert.True(d.Msix.IsMasked(0));
            Assert.Equal(1u, p.MmioRead32(table + 12));
            Program(p, table, 1, 0xFEE0_1000, 0x4041, masked: false);
            Assert.Equal(0xFEE0_1000u, p.MmioRead32(table + 16));
            Assert.Equal(0x4041u, p.MmioRead32(table + 24));
            Assert.Equal(0u, p.MmioRead32(table + 28));
        }
    }

    [Fact]
    public void DisabledMsixDoesNotDeliver()
    {
        (TestPlatform p, TestPciDevice d, int _, ulong table) = Setup();
        using (p)
        {
            Program(p, table, 0, 0xFEE0_0000, 0x30, masked: false);
            Assert.False(d.Msix.Signal(0));
            Assert.Empty(p.Interrupts.Messages);
        }
    }

    [Fact]
    public void UnmaskedVectorDeliversItsMessage()
    {
        (TestPlatform p, TestPciDevice d, int slot, ulong table) = Setup();
        using (p)
        {
            p.ConfigWrite16(slot, 0x42, MsixCapability.ControlEnable);
            Program(p, table, 2, 0xFEE0_2000, 0x55, masked: false);
            Assert.True(d.Msix.Signal(2));
            Assert.Equal([(0xFEE0_2000UL, 0x55u)], p.Interrupts.Messages);
            Assert.False(d.Msix.Signal(4)); // no such vector
        }
    }

    [Fact]
    public void MaskedVectorSetsItsPendingBitAndFiresOnUnmask()
    {
        (TestPlatform p, TestPciDevice d, int slot, ulong table) = Setup();
        using (p)
        {
            p.ConfigWrite16(slot, 0x42, MsixCapability.ControlEnable);
            Program(p, table, 3, 0xFEE0_0000, 0x77, masked: true);
            d.Msix.Signal(3);
            Assert.Empty(p.Interrupts.Messages);
            Assert.Equal(1u << 3, p.MmioRead32(table + 0x2000));

            p.MmioWrite32(table + (3 * 16) + 12, 0);
            Assert.Equal([(0xFEE0_0000UL, 0x77u)], p.Interrupts.Messages);
            Assert.Equal(0u, p.MmioRead32(table + 0x2000));
        }
    }

    [Fact]
    public void FunctionMaskHoldsEveryVectorUntilCleared()
    {
        (TestPlatform p, TestPciDevice d, int slot, ulong table) = Setup();
        using (p)
        {
            p.ConfigWrite16(slot, 0x42, MsixCapability.ControlEnable | MsixCapability.ControlFunctionMask);
            Program(p, table, 0, 0xFEE0_0000, 0x31, masked: false);
            Program(p, table, 1, 0xFEE0_0000, 0x32, masked: false);
            d.Msix.Signal(0);
            d.Msix.Signal(1);
            Assert.Empty(p.Interrupts.Messages);
            Assert.True(d.Msix.IsPending(0) && d.Msix.IsPending(1));

            p.ConfigWrite16(slot, 0x42, MsixCapability.ControlEnable);
            Assert.Equal([(0xFEE0_0000UL, 0x31u), (0xFEE0_0000UL, 0x32u)], p.Interrupts.Messages);
            Assert.False(d.Msix.IsPending(0) || d.Msix.IsPending(1));
        }
    }

    [Fact]
    public void PendingBitsAreReadOnlyAndTableSizeIsReadOnly()
    {
        (TestPlatform p, TestPciDevice _, int slot, ulong table) = Setup();
        using (p)
        {
            p.MmioWrite32(table + 0x2000, 0xFFFF_FFFF);
            Assert.Equal(0u, p.MmioRead32(table + 0x2000));
            p.ConfigWrite16(slot, 0x42, 0x07FF);
            Assert.Equal(3, p.ConfigRead16(slot, 0x42));
        }
    }
}
