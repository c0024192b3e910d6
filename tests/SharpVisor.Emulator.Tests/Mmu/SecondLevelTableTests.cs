using SharpVisor.Emulator.Mmu;
using SharpVisor.Memory;

namespace SharpVisor.Emulator.Tests.Mmu;

// The CPU core has its own IMmu and TlbEntry in SharpVisor.Emulator; these tests mean the MMU's.
using IMmu = SharpVisor.Emulator.Mmu.IMmu;
using TlbEntry = SharpVisor.Emulator.Mmu.TlbEntry;

public class SecondLevelTableTests
{
    [Fact]
    public void MapsEveryRegionWithItsRightsAndNothingElse()
    {
        var memory = new GuestMemory();
        memory.AddRegion(0, 8 << 20);
        memory.AddRegion(0xFFFC_0000, 256 << 10, readOnly: true);
        memory.AddRegion(0x1_0000_0000, 2 << 20);
        using GuestMemory owned = memory;
        using SecondLevelTable table = SecondLevelTable.Build(memory);

        foreach (MemoryRegion region in memory.Regions)
        {
            SecondLevelRights expected = region.ReadOnly ? SecondLevelRights.Read | SecondLevelRights.Execute : SecondLevelRights.All;
            foreach (ulong offset in new ulong[] { 0, 0x123, region.Size - 1 })
            {
                Assert.Equal(expected, table.Translate(region.GuestPhysicalAddress + offset, out nint host));
                Assert.Equal(region.HostAddress + (nint)offset, host);
            }
        }

        Assert.Equal(SecondLevelRights.None, table.Translate(8 << 20, out _));
        Assert.Equal(SecondLevelRights.None, table.Translate(0xFEE0_0000, out _));
        Assert.Equal(SecondLevelRights.None, table.Translate(0x1_0020_0000, out _));
        Assert.Equal(SecondLevelRights.None, table.Translate(1UL << 48, out _));
        Assert.Equal(SecondLevelRights.None, table.Translate(ulong.MaxValue, out _));
    }

    [Fact]
    public void AlignedRangesUseLargeEntries()
    {
        using var table = new SecondLevelTable();
        table.Map(0x4000_0000, unchecked((nint)0x7F00_4000_0000), 1UL << 30, SecondLevelRights.All);
        Assert.Equal(2, table.TablePages); // the root and the PDPT holding the 1 GiB entry
        table.Map(0x8000_0000, unchecked((nint)0x7F00_0020_0000), 4UL << 20, SecondLevelRights.Read);
        Assert.Equal(3, table.TablePages); // and a PD holding two 2 MiB entries
        Assert.Equal(SecondLevelRights.All, table.Translate(0x4123_4567, out nint host));
        Assert.Equal(unchecked((nint)0x7F00_4123_4567), host);
        Assert.Equal(SecondLevelRights.Read, table.Translate(0x803F_FFFF, out host));
        Assert.Equal(unchecked((nint)0x7F00_005F_FFFF), host);
    }

    [Fact]
    public void RejectsOverlapsAndMisalignment()
    {
        using var table = new SecondLevelTable();
        nint host = unchecked((nint)0x7F00_0010_0000);
        table.Map(0x10_0000, host, 0x2000, SecondLevelRights.All);
        Assert.Throws<InvalidOperationException>(() => table.Map(0x10_1000, host + 0x10_0000, 0x1000, SecondLevelRights.All));
        Assert.Throws<ArgumentException>(() => table.Map(0x10_0800, host, 0x1000, SecondLevelRights.All));
        Assert.Throws<ArgumentOutOfRangeException>(() => table.Map((1UL << 48) - 0x1000, host, 0x2000, SecondLevelRights.All));
        Assert.Throws<ArgumentException>(() => table.Map(0x20_0000, host, 0x1000, SecondLevelRights.None));
    }
}
