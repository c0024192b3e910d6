using SharpVisor.Emulator.Mmu;
using SharpVisor.Memory;

namespace SharpVisor.Emulator.Tests.Mmu;

// The CPU core has its own IMmu and TlbEntry in SharpVisor.Emulator; these tests mean the MMU's.
using IMmu = SharpVisor.Emulator.Mmu.IMmu;
using TlbEntry = SharpVisor.Emulator.Mmu.TlbEntry;

/// <summary>Builds guest page tables by hand in guest memory, for any paging mode.</summary>
internal sealed class PageTables
{
    public const ulong P = 1UL << 0;
    public const ulong RW = 1UL << 1;
    public const ulong US = 1UL << 2;
    public const ulong A = 1UL << 5;
    public const ulong D = 1UL << 6;
    public const ulong PS = 1UL << 7;
    public const ulong G = 1UL << 8;
    public const ulong NX = 1UL << 63;

    public const ulong DefaultTableFlags = P | RW | US;

    private readonly GuestMemory _memory;
    private ulong _next;

    public PageTables(GuestMemory memory, PagingMode mode, ulong tableArea = 0x10_0000)
    {
        _memory = memory;
        Mode = mode;
        _next = tableArea;
        Root = AllocateTable();
    }

    public PagingMode Mode { get; }

    /// <summary>The top-level table (for PAE, the PDPT): the CR3 value.</summary>
    public ulong Root { get; }

    public int TopLevel => Mode switch
    {
        PagingMode.FourLevel => 4,
        PagingMode.Pae => 3,
        _ => 2,
    };

    public int EntrySize => Mode == PagingMode.Legacy32 ? 4 : 8;

    public ulong AllocateTable()
    {
        ulong table = _next;
        _next += 4096;
        _memory.Fill(table, 4096, 0);
        return table;
    }

    /// <summary>Creates a new top-level table sharing nothing (another address space).</summary>
    public PageTables NewAddressSpace()
    {
        ulong area = _next;
        _next += 64 * 4096;
        return new PageTables(_memory, Mode, area);
    }

    /// <summary>Maps <paramref name="linear"/> to <paramref name="physical"/>; returns the guest-physical address of the leaf entry.</summary>
    public ulong Map(ulong linear, ulong physical, ulong flags, ulong pageSize = 4096, ulong tableFlags = DefaultTableFlags)
    {
        int leafLevel = pageSize switch
        {
            4096 => 1,
            2UL << 20 or 4UL << 20 => 2,
            1UL << 30 => 3,
            _ => throw new ArgumentOutOfRangeException(nameof(pageSize)),
        };
        ulong table = Root;
        for (int level = TopLevel; level > leafLevel; level--)
        {
            ulong address = EntryAddress(table, linear, level);
            ulong entry = Read(address);
            if ((entry & P) == 0)
            {
                // PAE's PDPTEs have no rights bits (they are reserved there).
                entry = AllocateTable() | (Mode == PagingMode.Pae && level == 3 ? P : tableFlags);
                Write(address, entry);
            }

            table = TableOf(entry);
        }

        ulong leaf = EntryAddress(table, linear, leafLevel);
        ulong value = flags | (leafLevel > 1 ? PS : 0);
        if (Mode == PagingMode.Legacy32 && leafLevel == 2)
        {
            value |= (physical & 0xFFC0_0000) | (((physical >> 32) & 0xFF) << 13); // PSE-36
        }
        else
        {
            value |= physical;
        }

        Write(leaf, value);
        return leaf;
    }

    /// <summary>Links <paramref name="linear"/>'s top-level entry to another space's table (shared kernel half).</summary>
    public void ShareTopLevelEntry(PageTables other, ulong linear)
    {
        ulong address = EntryAddress(Root, linear, TopLevel);
        Write(address, other.Read(EntryAddress(other.Root, linear, TopLevel)));
    }

    /// <summary>The guest-physical address of the entry at <paramref name="level"/> used to translate <paramref name="linear"/>.</summary>
    public ulong EntryAddressOf(ulong linear, int level)
    {
        ulong table = Root;
        for (int l = TopLevel; l > level; l--)
        {
            table = TableOf(Read(EntryAddress(table, linear, l)));
        }

        return EntryAddress(table, linear, level);
    }

    public ulong Read(ulong address) => EntrySize == 4 ? _memory.Read<uint>(address) : _memory.Read<ulong>(address);

    public void Write(ulong address, ulong value)
    {
        if (EntrySize == 4)
        {
            _memory.Write(address, (uint)value);
        }
        else
        {
            _memory.Write(address, value);
        }
    }

    public void Update(ulong address, ulong set, ulong clear = 0) => Write(address, (Read(address) | set) & ~clear);

    private ulong TableOf(ulong entry) => Mode == PagingMode.Legacy32 ? entry & 0xFFFF_F000 : entry & 0x000F_FFFF_FFFF_F000;

    private ulong EntryAddress(ulong table, ulong linear, int level)
    {
        int index = Mode switch
        {
            PagingMode.Legacy32 => (int)(linear >> (level == 2 ? 22 : 12)) & 0x3FF,
            PagingMode.Pae when level == 3 => (int)(linear >> 30) & 3,
            _ => (int)(linear >> (12 + (9 * (level - 1)))) & 0x1FF,
        };
        return table + ((ulong)index * (ulong)EntrySize);
    }
}
