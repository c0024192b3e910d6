using SharpVisor.Memory;

namespace SharpVisor.Memory.Tests;

public class GuestMemoryTests
{
    [Fact]
    public void SmallRamIsOneRegionAtZero()
    {
        using GuestMemory memory = GuestMemory.CreateRam(64 << 20);
        MemoryRegion region = Assert.Single(memory.Regions);
        Assert.Equal(0UL, region.GuestPhysicalAddress);
        Assert.Equal(64UL << 20, region.Size);
        Assert.Equal(64UL << 20, memory.RamSize);
    }

    [Fact]
    public void LargeRamSkipsTheMmioHole()
    {
        using GuestMemory memory = GuestMemory.CreateRam(4UL << 30);
        Assert.Equal(2, memory.Regions.Count);
        Assert.Equal(GuestMemory.MmioHoleStart, memory.Regions[0].Size);
        Assert.Equal(GuestMemory.HighMemoryStart, memory.Regions[1].GuestPhysicalAddress);
        Assert.Equal((4UL << 30) - GuestMemory.MmioHoleStart, memory.Regions[1].Size);
        Assert.False(memory.IsValid(GuestMemory.MmioHoleStart, 1));
        Assert.True(memory.IsValid(GuestMemory.HighMemoryStart, 4096));
    }

    [Fact]
    public void ReadsBackWhatWasWritten()
    {
        using GuestMemory memory = GuestMemory.CreateRam(4 << 20);
        memory.Write<ulong>(0x1000, 0x1122334455667788);
        Assert.Equal(0x1122334455667788UL, memory.Read<ulong>(0x1000));
        Assert.Equal(0x88, memory.Read<byte>(0x1000));
        memory.Write(0x2000, "hello"u8);
        Span<byte> back = stackalloc byte[5];
        memory.Read(0x2000, back);
        Assert.Equal("hello"u8.ToArray(), back.ToArray());
    }

    [Theory]
    [InlineData(4UL << 20, 1)]              // one past the end
    [InlineData((4UL << 20) - 4, 8)]        // straddles the end
    [InlineData(ulong.MaxValue, 1)]         // top of the address space
    [InlineData(ulong.MaxValue - 3, 8)]     // would wrap
    [InlineData(0xFEE0_0000UL, 4)]          // MMIO, not RAM
    public void RejectsOutOfRangeAccesses(ulong address, int length)
    {
        using GuestMemory memory = GuestMemory.CreateRam(4 << 20);
        Assert.False(memory.IsValid(address, (ulong)length));
        Assert.False(memory.TryGetSpan(address, length, out _));
        Assert.Throws<GuestMemoryException>(() => memory.GetSpan(address, length));
        Assert.Throws<GuestMemoryException>(() => memory.Write(address, new byte[length]));
    }

    [Fact]
    public void RejectsNegativeLength()
    {
        using GuestMemory memory = GuestMemory.CreateRam(4 << 20);
        Assert.Throws<GuestMemoryException>(() => memory.GetSpan(0, -1));
    }

    [Fact]
    public void AccessMayNotSpanTwoRegions()
    {
        using var memory = new GuestMemory();
        memory.AddRegion(0, 0x1000);
        memory.AddRegion(0x1000, 0x1000);
        Assert.True(memory.IsValid(0xFF8, 8));
        Assert.False(memory.IsValid(0xFFC, 8));
    }

    [Theory]
    [InlineData(0UL)]
    [InlineData(1UL << 20)]
    [InlineData(2UL << 40)]
    [InlineData((64UL << 20) + 1)]
    public void RejectsAbsurdSizes(ulong size)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => GuestMemory.CreateRam(size));
    }

    [Fact]
    public void RejectsOverlappingRegions()
    {
        using var memory = new GuestMemory();
        memory.AddRegion(0x10000, 0x10000);
        Assert.Throws<ArgumentException>(() => memory.AddRegion(0x18000, 0x10000));
    }

    [Fact]
    public void RegionIsBackedByAMemfd()
    {
        using GuestMemory memory = GuestMemory.CreateRam(4 << 20);
        int fd = memory.Regions[0].MemFd;
        string target = File.ResolveLinkTarget($"/proc/self/fd/{fd}", false)!.ToString();
        Assert.StartsWith("/memfd:", target);
    }
}
