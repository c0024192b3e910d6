using SharpVisor.Memory;

namespace SharpVisor.Boot;

/// <summary>
/// The guest's physical memory map as the firmware would report it through e820: sorted,
/// non-overlapping ranges. Linux gets it in boot_params, Multiboot kernels as mmap entries.
/// </summary>
public sealed class E820Map
{
    /// <summary>boot_params holds at most 128 entries (E820_MAX_ENTRIES_ZEROPAGE).</summary>
    public const int MaxEntries = 128;

    /// <summary>Start of the extended BIOS data area: conventional memory ends here.</summary>
    public const ulong EbdaStart = 0x9FC00;

    /// <summary>End of the legacy BIOS area (VGA hole, option ROMs, BIOS): extended memory starts here.</summary>
    public const ulong BiosAreaEnd = 0x10_0000;

    private readonly List<E820Entry> _entries = new();

    public IReadOnlyList<E820Entry> Entries => _entries;

    /// <summary>
    /// The PC map of <paramref name="memory"/>: each RAM region is usable except the legacy
    /// EBDA/BIOS window 0x9FC00..0x100000, which is reported reserved (a real PC has its EBDA,
    /// VGA memory and BIOS there); read-only regions (ROMs) are reported reserved too.
    /// </summary>
    public static E820Map FromGuestMemory(GuestMemory memory)
    {
        var map = new E820Map();
        map.Add(EbdaStart, BiosAreaEnd - EbdaStart, E820Type.Reserved);
        foreach (MemoryRegion region in memory.Regions)
        {
            ulong start = region.GuestPhysicalAddress;
            ulong end = region.End;
            if (region.ReadOnly)
            {
                // A ROM inside the BIOS window is already covered by the reserved entry.
                if (start >= EbdaStart && end <= BiosAreaEnd)
                {
                    continue;
                }

                map.Add(start, end - start, E820Type.Reserved);
                continue;
            }

            if (start < EbdaStart)
            {
                map.Add(start, Math.Min(end, EbdaStart) - start, E820Type.Ram);
            }

            if (end > BiosAreaEnd)
            {
                ulong from = Math.Max(start, BiosAreaEnd);
                map.Add(from, end - from, E820Type.Ram);
            }
        }

        return map;
    }

    /// <summary>Adds a range; ranges may not overlap and the table may not outgrow boot_params.</summary>
    public void Add(ulong address, ulong size, E820Type type)
    {
        if (size == 0 || address + size < address)
        {
            throw new ArgumentOutOfRangeException(nameof(size), $"e820 range 0x{address:x}+0x{size:x} is empty or wraps");
        }

        foreach (E820Entry e in _entries)
        {
            if (address < e.End && e.Address < address + size)
            {
                throw new ArgumentException($"e820 range 0x{address:x}+0x{size:x} overlaps 0x{e.Address:x}+0x{e.Size:x}");
            }
        }

        if (_entries.Count == MaxEntries)
        {
            throw new InvalidOperationException($"the e820 map is full ({MaxEntries} entries)");
        }

        _entries.Add(new E820Entry(address, size, type));
        _entries.Sort((a, b) => a.Address.CompareTo(b.Address));
    }

    /// <summary>
    /// Carves [address, address+size) out of the RAM range holding it and reports it reserved
    /// (pages the hypervisor owns, such as Xen's console and XenStore rings).
    /// </summary>
    public void Reserve(ulong address, ulong size)
    {
        int index = _entries.FindIndex(e => e.Type == E820Type.Ram && e.Contains(address, size));
        if (index < 0)
        {
            throw new ArgumentException($"0x{address:x}+0x{size:x} is not inside one RAM range");
        }

        E820Entry ram = _entries[index];
        _entries.RemoveAt(index);
        if (address > ram.Address)
        {
            _entries.Add(new E820Entry(ram.Address, address - ram.Address, E820Type.Ram));
        }

        _entries.Add(new E820Entry(address, size, E820Type.Reserved));
        if (address + size < ram.End)
        {
            _entries.Add(new E820Entry(address + size, ram.End - (address + size), E820Type.Ram));
        }

        _entries.Sort((a, b) => a.Address.CompareTo(b.Address));
    }

    /// <summary>True when [address, address+size) lies inside one usable RAM range.</summary>
    public bool IsUsable(ulong address, ulong size)
    {
        foreach (E820Entry e in _entries)
        {
            if (e.Type == E820Type.Ram && e.Contains(address, size))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The usable RAM range holding <paramref name="address"/>, or null.</summary>
    public E820Entry? FindRam(ulong address)
    {
        foreach (E820Entry e in _entries)
        {
            if (e.Type == E820Type.Ram && e.Contains(address, 1))
            {
                return e;
            }
        }

        return null;
    }

    /// <summary>End of the usable RAM that continues from 1 MiB (the top of "low" RAM, at most 3 GiB here).</summary>
    public ulong LowRamEnd => FindRam(BiosAreaEnd)?.End ?? 0;

    /// <summary>The table as boot_params stores it: 20-byte packed entries.</summary>
    public void Encode(Span<byte> destination)
    {
        for (int i = 0; i < _entries.Count; i++)
        {
            Span<byte> slot = destination.Slice(i * E820Entry.EncodedSize, E820Entry.EncodedSize);
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(slot, _entries[i].Address);
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(slot[8..], _entries[i].Size);
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(slot[16..], (uint)_entries[i].Type);
        }
    }

    public override string ToString() =>
        string.Join('\n', _entries.Select(e => $"0x{e.Address:x9}-0x{e.End - 1:x9} {e.Type}"));
}
