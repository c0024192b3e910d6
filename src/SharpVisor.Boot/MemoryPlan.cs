namespace SharpVisor.Boot;

/// <summary>
/// The ledger of what the loader has put where: every placement must lie in usable RAM and
/// must not overlap the fixed boot structures or anything placed before it.
/// </summary>
internal sealed class MemoryPlan
{
    private readonly List<BootPlacement> _placements = new();

    private readonly bool _reserveBootLayout;

    /// <param name="reserveBootLayout">
    /// Whether the fixed <see cref="BootLayout"/> regions are off limits (Linux); the Multiboot
    /// loader places its structures after the kernel instead (<see cref="MultibootPlacement"/>).
    /// </param>
    public MemoryPlan(E820Map map, bool reserveBootLayout = true)
    {
        Map = map;
        _reserveBootLayout = reserveBootLayout;
    }

    public E820Map Map { get; }

    /// <summary>The loader's own placements (kernel, initrd, modules), in order.</summary>
    public IReadOnlyList<BootPlacement> Placements => _placements;

    /// <summary>Records [address, address+size) for <paramref name="name"/> or throws naming <paramref name="file"/>.</summary>
    public void Place(string file, string name, ulong address, ulong size)
    {
        if (size == 0)
        {
            return;
        }

        if (address + size < address || !Map.IsUsable(address, size))
        {
            throw new BootImageException(file, $"{name} at 0x{address:x}-0x{address + size:x} does not fit in guest RAM ({Describe(Map)})");
        }

        BootPlacement? clash = FindOverlap(address, size);
        if (clash is { } other)
        {
            throw new BootImageException(file, $"{name} at 0x{address:x}-0x{address + size:x} overlaps the {other.Name} at 0x{other.Address:x}-0x{other.End:x}");
        }

        _placements.Add(new BootPlacement(name, address, size));
    }

    /// <summary>
    /// The highest <paramref name="alignment"/>-aligned address where <paramref name="size"/> bytes fit in
    /// usable RAM within [floor, ceiling) without overlapping anything placed; null when there is none.
    /// </summary>
    public ulong? FindHighest(ulong size, ulong alignment, ulong floor, ulong ceiling)
    {
        // The best spot ends at the ceiling, at the end of a RAM range or at the start of a
        // placement (anything higher would overlap it); try each of those and keep the best.
        var ends = new List<ulong> { ceiling };
        ends.AddRange(Map.Entries.Where(e => e.Type == E820Type.Ram).Select(e => e.End));
        ends.AddRange(AllOccupied().Select(p => p.Address));

        ulong? best = null;
        foreach (ulong end in ends)
        {
            ulong top = Math.Min(end, ceiling);
            if (top < size)
            {
                continue;
            }

            ulong candidate = (top - size) & ~(alignment - 1);
            if (candidate >= floor && Map.IsUsable(candidate, size) && FindOverlap(candidate, size) is null && (best is null || candidate > best))
            {
                best = candidate;
            }
        }

        return best;
    }

    private BootPlacement? FindOverlap(ulong address, ulong size)
    {
        foreach (BootPlacement p in AllOccupied())
        {
            if (p.Overlaps(address, size))
            {
                return p;
            }
        }

        return null;
    }

    /// <summary>Whether [address, address+size) is usable RAM that nothing placed overlaps.</summary>
    public bool IsFree(ulong address, ulong size) =>
        address + size >= address && Map.IsUsable(address, size) && FindOverlap(address, size) is null;

    private IEnumerable<BootPlacement> AllOccupied() => _reserveBootLayout ? BootLayout.Regions.Concat(_placements) : _placements;

    private static string Describe(E820Map map) =>
        "usable RAM: " + string.Join(", ", map.Entries.Where(e => e.Type == E820Type.Ram).Select(e => $"0x{e.Address:x}-0x{e.End:x}"));
}
