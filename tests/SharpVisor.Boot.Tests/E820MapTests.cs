using System.Buffers.Binary;
using SharpVisor.Memory;

namespace SharpVisor.Boot.Tests;

public sealed class E820MapTests
{
    [Fact]
    public void SmallGuestHasConventionalMemoryBiosHoleAndExtendedMemory()
    {
        using GuestMemory memory = GuestMemory.CreateRam(256UL << 20);
        E820Map map = E820Map.FromGuestMemory(memory);

        Assert.Equal(
            [
                new E820Entry(0, 0x9FC00, E820Type.Ram),
                new E820Entry(0x9FC00, 0x100000 - 0x9FC00, E820Type.Reserved),
                new E820Entry(0x100000, (256UL << 20) - 0x100000, E820Type.Ram),
            ],
            map.Entries);
        Assert.Equal(256UL << 20, map.LowRamEnd);
    }

    [Fact]
    public void RamBeyondTheHoleIsSplitAtThreeGiBAndContinuesAtFourGiB()
    {
        using GuestMemory memory = GuestMemory.CreateRam(5UL << 30);
        E820Map map = E820Map.FromGuestMemory(memory);

        Assert.Equal(4, map.Entries.Count);
        Assert.Equal(new E820Entry(0x100000, (3UL << 30) - 0x100000, E820Type.Ram), map.Entries[2]);
        Assert.Equal(new E820Entry(4UL << 30, 2UL << 30, E820Type.Ram), map.Entries[3]);
        Assert.Equal(3UL << 30, map.LowRamEnd);
        Assert.False(map.IsUsable((3UL << 30) - 0x1000, 0x2000), "a range crossing into the MMIO hole is not usable");
        Assert.True(map.IsUsable(4UL << 30, 0x1000));

        for (int i = 1; i < map.Entries.Count; i++)
        {
            Assert.True(map.Entries[i - 1].End <= map.Entries[i].Address, "entries are sorted and disjoint");
        }
    }

    [Fact]
    public void ReadOnlyRegionsAreReported()
    {
        using GuestMemory memory = GuestMemory.CreateRam(64UL << 20);
        memory.AddRegion(0xFFFC_0000, 0x4_0000, readOnly: true, name: "bios");
        E820Map map = E820Map.FromGuestMemory(memory);

        Assert.Equal(new E820Entry(0xFFFC_0000, 0x4_0000, E820Type.Reserved), map.Entries[^1]);
    }

    [Fact]
    public void EncodesPackedTwentyByteEntries()
    {
        using GuestMemory memory = GuestMemory.CreateRam(64UL << 20);
        E820Map map = E820Map.FromGuestMemory(memory);
        byte[] table = new byte[map.Entries.Count * 20];
        map.Encode(table);

        for (int i = 0; i < map.Entries.Count; i++)
        {
            Assert.Equal(map.Entries[i].Address, BinaryPrimitives.ReadUInt64LittleEndian(table.AsSpan(i * 20)));
            Assert.Equal(map.Entries[i].Size, BinaryPrimitives.ReadUInt64LittleEndian(table.AsSpan(i * 20 + 8)));
            Assert.Equal((uint)map.Entries[i].Type, BinaryPrimitives.ReadUInt32LittleEndian(table.AsSpan(i * 20 + 16)));
        }
    }

    [Fact]
    public void RejectsOverlapsAndMoreThan128Entries()
    {
        var map = new E820Map();
        map.Add(0x1000, 0x1000, E820Type.Ram);
        Assert.Throws<ArgumentException>(() => map.Add(0x1800, 0x1000, E820Type.Reserved));

        var full = new E820Map();
        for (int i = 0; i < E820Map.MaxEntries; i++)
        {
            full.Add((ulong)i * 0x2000, 0x1000, E820Type.Ram);
        }

        Assert.Throws<InvalidOperationException>(() => full.Add(0x1000_0000, 0x1000, E820Type.Ram));
    }
}
