using SharpVisor.Memory;

namespace SharpVisor.Memory.Tests;

public sealed class GuestMemoryDiscardTests
{
    [Fact]
    public void DiscardedPagesReadBackAsZeroAndNeighboursKeepTheirData()
    {
        using GuestMemory memory = GuestMemory.CreateRam(4 << 20);
        memory.Fill(0x10_0000, 3 * 4096, 0xAB);
        Assert.True(memory.TryDiscard(0x10_1000, 4096));
        Assert.All(memory.GetSpan(0x10_1000, 4096).ToArray(), b => Assert.Equal(0, b));
        Assert.Equal(0xAB, memory.Read<byte>(0x10_0FFF));
        Assert.Equal(0xAB, memory.Read<byte>(0x10_2000));

        // The page is still usable afterwards.
        memory.Write(0x10_1000, 0x1234u);
        Assert.Equal(0x1234u, memory.Read<uint>(0x10_1000));
    }

    [Fact]
    public void DiscardRefusesMisalignedOrOutOfRangeRequests()
    {
        using GuestMemory memory = GuestMemory.CreateRam(4 << 20);
        memory.Fill(0x1000, 4096, 0xCD);
        Assert.False(memory.TryDiscard(0x1800, 4096));
        Assert.False(memory.TryDiscard(0x1000, 100));
        Assert.False(memory.TryDiscard(0x1000, 0));
        Assert.False(memory.TryDiscard((4 << 20) - 4096, 8192));
        Assert.False(memory.TryDiscard(ulong.MaxValue - 4095, 4096));
        Assert.Equal(0xCD, memory.Read<byte>(0x1000));
    }

    [Fact]
    public void EveryRegionSitsBetweenInaccessibleGuardPages()
    {
        using GuestMemory memory = GuestMemory.CreateRam(4 << 20);
        MemoryRegion region = memory.Regions.Single();
        string[] maps = File.ReadAllLines("/proc/self/maps");
        Assert.Contains(maps, l => Covers(l, (ulong)region.HostAddress - MemoryRegion.GuardSize) && l.Contains(" ---p "));
        Assert.Contains(maps, l => Covers(l, (ulong)region.HostAddress + region.Size) && l.Contains(" ---p "));

        static bool Covers(string line, ulong address)
        {
            string[] range = line.Split(' ')[0].Split('-');
            return Convert.ToUInt64(range[0], 16) <= address && address < Convert.ToUInt64(range[1], 16);
        }
    }
}
