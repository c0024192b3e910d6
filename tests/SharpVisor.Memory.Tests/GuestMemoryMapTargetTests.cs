using SharpVisor.Memory;

namespace SharpVisor.Memory.Tests;

/// <summary>
/// Map targets (<see cref="GuestMemory.AddMapTargetPage"/>): one-page regions outside RAM that
/// show another memory file's page (a Xen grant map into unpopulated address space).
/// </summary>
public sealed class GuestMemoryMapTargetTests
{
    private const ulong Target = 0x1000_0000;

    [Fact]
    public void AMapTargetIsAZeroPageThatIsNeitherRamNorAFile()
    {
        using GuestMemory memory = GuestMemory.CreateRam(16 << 20);
        MemoryRegion region = memory.AddMapTargetPage(Target);

        Assert.True(region.IsMapTarget);
        Assert.False(region.IsRam);
        Assert.Equal(-1, region.MemFd);
        Assert.Equal(16UL << 20, memory.RamSize);
        Assert.Same(region, memory.FindRegion(Target + 8, 8));
        Assert.True(memory.GetSpan(Target, 4096).IndexOfAnyExcept((byte)0) < 0);
        Assert.False(memory.TryGetPageFile(Target, out _, out _));
        Assert.Equal(1, memory.MapTargetPageCount);

        Assert.Throws<ArgumentException>(() => memory.AddMapTargetPage(Target));             // twice
        Assert.Throws<ArgumentException>(() => memory.AddMapTargetPage(0x1000));             // over RAM
        Assert.Throws<ArgumentOutOfRangeException>(() => memory.AddMapTargetPage(Target + 0x2001));
    }

    [Fact]
    public void AnotherFilesPageShowsAtAMapTargetUntilRestoredThenZeros()
    {
        using GuestMemory granter = GuestMemory.CreateRam(4 << 20);
        using GuestMemory mapper = GuestMemory.CreateRam(4 << 20);
        granter.Write(0x5000, "granted"u8);
        Assert.True(granter.TryGetPageFile(0x5000, out int memfd, out long offset));
        mapper.AddMapTargetPage(Target);

        Assert.True(mapper.TryMapForeignPage(Target, memfd, offset, readOnly: false));
        Assert.Equal("granted"u8.ToArray(), mapper.GetSpan(Target, 7).ToArray());
        mapper.Write(Target + 100, "back"u8);
        Assert.Equal("back"u8.ToArray(), granter.GetSpan(0x5000 + 100, 4).ToArray());

        Assert.True(mapper.TryRestoreOwnPage(Target));
        Assert.True(mapper.GetSpan(Target, 4096).IndexOfAnyExcept((byte)0) < 0);
        Assert.Equal("granted"u8.ToArray(), granter.GetSpan(0x5000, 7).ToArray());

        // Read-only: writes stay in the private copy, and the restore drops them.
        Assert.True(mapper.TryMapForeignPage(Target, memfd, offset, readOnly: true));
        mapper.Write(Target, "private"u8);
        Assert.Equal("granted"u8.ToArray(), granter.GetSpan(0x5000, 7).ToArray());
        Assert.True(mapper.TryRestoreOwnPage(Target));
        Assert.True(mapper.GetSpan(Target, 4096).IndexOfAnyExcept((byte)0) < 0);
    }

    [Fact]
    public void FindRegionFindsEachOfManyRegionsAndNothingBetweenOrAcrossThem()
    {
        using GuestMemory memory = GuestMemory.CreateRam(16 << 20);
        for (ulong i = 0; i < 2000; i++)
        {
            memory.AddMapTargetPage(Target + ((1999 - i) * 0x2000));   // added out of order
        }

        Assert.True(memory.Regions.Zip(memory.Regions.Skip(1)).All(p => p.First.End <= p.Second.GuestPhysicalAddress));
        for (ulong i = 0; i < 2000; i++)
        {
            ulong page = Target + (i * 0x2000);
            Assert.Equal(page, memory.FindRegion(page + 0xFF8, 8)?.GuestPhysicalAddress);
            Assert.Null(memory.FindRegion(page + 0x1000, 1));      // the gap after it
            Assert.Null(memory.FindRegion(page + 0xFFC, 8));       // runs off its end
        }

        Assert.NotNull(memory.FindRegion(0, 16 << 20));
        Assert.Null(memory.FindRegion((16 << 20) - 8, 16));
    }
}
