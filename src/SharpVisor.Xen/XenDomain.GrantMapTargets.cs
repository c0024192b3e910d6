using SharpVisor.Memory;

namespace SharpVisor.Xen;

/// <summary>
/// Grant-map targets outside RAM (docs/xen.md, "Map targets outside RAM"). Linux with
/// CONFIG_XEN_UNPOPULATED_ALLOC=y (Debian's kernel) takes the pages its back ends map grants into
/// from unused guest-physical address space — 128 MiB sections of free iomem, first fit from the
/// bottom, so just above its RAM — not from ballooned RAM. Xen puts the granted frame into the
/// physmap there; SharpVisor gives such an address a one-page region of its own
/// (<see cref="GuestMemory.AddMapTargetPage"/>) and maps the granter's page over it.
/// </summary>
public sealed partial class XenDomain
{
    /// <summary>
    /// How far above the top of the address space the domain already uses (its RAM, and never
    /// less than 4 GiB) map targets may lie. Linux allocates unpopulated sections first fit from
    /// the bottom, so its targets sit right above RAM (or, for RAM below 3 GiB, between RAM and
    /// the MMIO hole); 64 GiB is 512 such sections. The window keeps a hostile guest's targets
    /// near its RAM rather than anywhere in 2^40.
    /// </summary>
    public const ulong MapTargetWindowSize = 64UL << 30;

    /// <summary>
    /// Distinct target pages outside RAM one domain may use over its life (32 MiB of maps): each is
    /// a region of its own (an anonymous page between two guard pages: up to three of the VMM's
    /// memory mappings, of the 65,530 vm.max_map_count allows a process; an entry in the nested
    /// MMU's table), kept for reuse after the unmap — Linux reuses its pool's pages. Linux's
    /// blkback holds at most 1,056 persistent grants and 1,024 pooled pages per ring plus what a
    /// full ring maps in flight. Beyond, a map there is GNTST_no_device_space.
    /// </summary>
    public const int MaxMapTargetPages = 8192;

    // Under _mapLock: the pages outside RAM this domain has used as map targets.
    private readonly HashSet<ulong> _mapTargetPages = new();
    private ulong _ramTop;

    /// <summary>The end of the window map targets outside RAM must lie below (<see cref="MapTargetWindowSize"/>).</summary>
    public ulong MapTargetWindowEnd
    {
        get
        {
            if (_ramTop == 0)
            {
                // RAM's regions are fixed when the domain is built; grant frames and map targets added later are not RAM.
                _ramTop = Memory.Regions.Where(r => r.IsRam).Select(r => r.End).DefaultIfEmpty(0UL).Max();
            }

            return Math.Min(Math.Max(_ramTop, GuestMemory.HighMemoryStart) + MapTargetWindowSize, 1UL << 40);
        }
    }

    /// <summary>Target pages outside RAM this domain has used (<see cref="MaxMapTargetPages"/> at most).</summary>
    public int MapTargetPageCount
    {
        get
        {
            lock (_mapLock)
            {
                return _mapTargetPages.Count;
            }
        }
    }

    /// <summary>
    /// Whether <paramref name="page"/> may receive a grant map: RAM (checked by the caller), or a
    /// page outside every region of the domain — not RAM, not a grant frame, not the MMIO hole
    /// [3 GiB, 4 GiB) where the machine's devices live (LAPIC, I/O APIC, an HVM domain's platform
    /// BAR) — below <see cref="MapTargetWindowEnd"/>, or a target page used before.
    /// </summary>
    private bool IsMapTargetOutsideRam(ulong page)
    {
        if (page >= MapTargetWindowEnd || (page >= GuestMemory.MmioHoleStart && page < GuestMemory.HighMemoryStart))
        {
            return false;
        }

        return Memory.FindRegion(page, 4096) is null or { IsMapTarget: true };
    }

    /// <summary>
    /// Under _mapLock: reserves <paramref name="page"/> (outside RAM) as a target; false when the
    /// domain has used <see cref="MaxMapTargetPages"/> distinct pages already.
    /// </summary>
    private bool ReserveMapTargetPage(ulong page, out bool added)
    {
        added = false;
        if (_mapTargetPages.Contains(page))
        {
            return true;
        }

        if (_mapTargetPages.Count >= MaxMapTargetPages)
        {
            return false;
        }

        _mapTargetPages.Add(page);
        added = true;
        return true;
    }

    /// <summary>
    /// Makes sure a region backs the target page outside RAM (the first map there adds it); false
    /// when the page was taken meanwhile (a grant frame the guest put there on another vCPU).
    /// </summary>
    private bool EnsureMapTargetRegion(ulong page)
    {
        if (Memory.FindRegion(page, 4096) is { } region)
        {
            return region.IsMapTarget;
        }

        try
        {
            Memory.AddMapTargetPage(page);
            Counters.Increment("grant-map-targets-outside-ram");
            return true;
        }
        catch (ArgumentException)
        {
            return Memory.FindRegion(page, 4096) is { IsMapTarget: true };
        }
    }
}
