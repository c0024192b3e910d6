using System.Runtime.InteropServices;
using SharpVisor.Memory;

namespace SharpVisor.Emulator.Mmu;

/// <summary>
/// The hypervisor's own guest-physical to host translation, in the format of Intel's EPT: a
/// 4-level radix tree of 512-entry tables in host memory, each entry holding read/write/execute
/// rights (bits 0-2), a large-page flag (bit 7) and, in bits 51:12, the host address of the next
/// table or of the page (a host virtual address: that is this process's "host physical").
/// Guest-physical addresses above 2^48 and holes between regions are unmapped; an access the
/// entry's rights do not allow is an EPT violation, which the CPU turns into MMIO dispatch.
/// Built once per domain from its <see cref="GuestMemory"/>, shared by the domain's vCPUs, and
/// afterwards only added to (<see cref="MapRegion"/>: a region added while they run).
/// </summary>
public sealed unsafe class SecondLevelTable : IDisposable
{
    public const int GuestPhysicalBits = 48;

    private const ulong LargePage = 1UL << 7;
    private const ulong AddressMask = 0x000F_FFFF_FFFF_F000;
    private const ulong TableSize = 4096;

    private readonly List<nint> _pages = new();
    private nint _root;

    public SecondLevelTable()
    {
        _root = AllocateTable();
    }

    /// <summary>Table pages allocated (the root included).</summary>
    public int TablePages => _pages.Count;

    /// <summary>Maps every region of <paramref name="memory"/>: RAM read/write/execute, read-only regions without write.</summary>
    public static SecondLevelTable Build(GuestMemory memory)
    {
        var table = new SecondLevelTable();
        try
        {
            foreach (MemoryRegion region in memory.Regions)
            {
                SecondLevelRights rights = region.ReadOnly ? SecondLevelRights.Read | SecondLevelRights.Execute : SecondLevelRights.All;
                table.Map(region.GuestPhysicalAddress, region.HostAddress, region.Size, rights);
            }
        }
        catch
        {
            table.Dispose();
            throw;
        }

        return table;
    }

    /// <summary>
    /// Maps a region added while the vCPUs run (their walks read the table without a lock: each
    /// new entry is published whole, after the table it points to is cleared). False once disposed.
    /// </summary>
    public bool MapRegion(MemoryRegion region)
    {
        ArgumentNullException.ThrowIfNull(region);
        lock (_pages)
        {
            if (_root == 0)
            {
                return false;
            }

            Map(region.GuestPhysicalAddress, region.HostAddress, region.Size, region.ReadOnly ? SecondLevelRights.Read | SecondLevelRights.Execute : SecondLevelRights.All);
            return true;
        }
    }

    /// <summary>Maps [guestPhysical, +size) to host memory at <paramref name="host"/>, with 1 GiB or 2 MiB entries where both sides are aligned.</summary>
    public void Map(ulong guestPhysical, nint host, ulong size, SecondLevelRights rights)
    {
        ObjectDisposedException.ThrowIf(_root == 0, this);
        if (((guestPhysical | (ulong)host | size) & 0xFFF) != 0)
        {
            throw new ArgumentException("second-level mappings must be 4 KiB aligned");
        }

        if (size == 0 || guestPhysical + size < guestPhysical || guestPhysical + size > 1UL << GuestPhysicalBits)
        {
            throw new ArgumentOutOfRangeException(nameof(size), $"0x{guestPhysical:x}+0x{size:x} is outside the {GuestPhysicalBits}-bit guest-physical space");
        }

        if (((ulong)host + size - 1) > AddressMask)
        {
            throw new ArgumentOutOfRangeException(nameof(host), "host address does not fit an EPT entry");
        }

        if ((rights & SecondLevelRights.All) == SecondLevelRights.None)
        {
            throw new ArgumentException("a mapping needs at least one right", nameof(rights));
        }

        ulong done = 0;
        while (done < size)
        {
            ulong gpa = guestPhysical + done;
            ulong hva = (ulong)host + done;
            int level = 1;
            for (int candidate = 3; candidate >= 2; candidate--)
            {
                ulong pageSize = PageSize(candidate);
                if (((gpa | hva) & (pageSize - 1)) == 0 && size - done >= pageSize)
                {
                    level = candidate;
                    break;
                }
            }

            SetLeaf(gpa, hva, level, rights);
            done += PageSize(level);
        }
    }

    /// <summary>
    /// Walks the table for <paramref name="guestPhysical"/>: the rights every level grants
    /// (<see cref="SecondLevelRights.None"/> when unmapped) and the host address.
    /// </summary>
    public SecondLevelRights Translate(ulong guestPhysical, out nint host)
    {
        host = 0;
        if ((guestPhysical >> GuestPhysicalBits) != 0 || _root == 0)
        {
            return SecondLevelRights.None;
        }

        ulong rights = (ulong)SecondLevelRights.All;
        nint table = _root;
        for (int level = 4; ; level--)
        {
            ulong entry = ((ulong*)table)[Index(guestPhysical, level)];
            rights &= entry;
            if ((entry & (ulong)SecondLevelRights.All) == 0)
            {
                return SecondLevelRights.None;
            }

            if (level == 1 || (entry & LargePage) != 0)
            {
                ulong pageSize = PageSize(level);
                host = (nint)((entry & AddressMask & ~(pageSize - 1)) | (guestPhysical & (pageSize - 1)));
                return (SecondLevelRights)(rights & (ulong)SecondLevelRights.All);
            }

            table = (nint)(entry & AddressMask);
        }
    }

    public void Dispose()
    {
        lock (_pages)
        {
            foreach (nint page in _pages)
            {
                NativeMemory.AlignedFree((void*)page);
            }

            _pages.Clear();
            _root = 0;
        }
    }

    private void SetLeaf(ulong gpa, ulong hva, int leafLevel, SecondLevelRights rights)
    {
        nint table = _root;
        for (int level = 4; level > leafLevel; level--)
        {
            ref ulong entry = ref ((ulong*)table)[Index(gpa, level)];
            if (entry == 0)
            {
                Volatile.Write(ref entry, (ulong)AllocateTable() | (ulong)SecondLevelRights.All);
            }
            else if ((entry & LargePage) != 0)
            {
                throw new InvalidOperationException($"guest-physical 0x{gpa:x} is already mapped");
            }

            table = (nint)(entry & AddressMask);
        }

        ref ulong leaf = ref ((ulong*)table)[Index(gpa, leafLevel)];
        if (leaf != 0)
        {
            throw new InvalidOperationException($"guest-physical 0x{gpa:x} is already mapped");
        }

        Volatile.Write(ref leaf, hva | (ulong)rights | (leafLevel > 1 ? LargePage : 0));
    }

    private nint AllocateTable()
    {
        void* page = NativeMemory.AlignedAlloc((nuint)TableSize, (nuint)TableSize);
        NativeMemory.Clear(page, (nuint)TableSize);
        _pages.Add((nint)page);
        return (nint)page;
    }

    private static int Index(ulong guestPhysical, int level) => (int)(guestPhysical >> (12 + (9 * (level - 1)))) & 0x1FF;

    private static ulong PageSize(int level) => 1UL << (12 + (9 * (level - 1)));
}
