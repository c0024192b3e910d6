namespace SharpVisor.Emulator.Mmu;

/// <summary>
/// The shadow of one guest page-table page at one level: the entries the MMU has walked
/// (checked, accessed bit set; 0 = not cached) and, for directory levels, the shadows of the
/// tables they point to. Shared by every address space whose walks pass through the guest
/// table (the kernel half of every Linux process).
/// </summary>
internal sealed class ShadowTable
{
    public ShadowTable(ulong physicalAddress, int level, int entryCount, ulong linearBase)
    {
        PhysicalAddress = physicalAddress;
        Level = level;
        Entries = new ulong[entryCount];
        Children = level > 1 ? new ShadowTable?[entryCount] : null;
        LinearBase = linearBase;
    }

    /// <summary>The guest table's address (for PAE's root, the PDPT that CR3 names).</summary>
    public ulong PhysicalAddress { get; }

    public int Level { get; }

    public ulong[] Entries { get; }

    public ShadowTable?[]? Children { get; }

    /// <summary>The linear address entry 0 maps, valid unless <see cref="Aliased"/>.</summary>
    public ulong LinearBase { get; }

    /// <summary>Reached at more than one linear address: invalidations flush the whole TLB.</summary>
    public bool Aliased { get; set; }

    /// <summary>Dropped (write flooding): parents still pointing here treat it as missing.</summary>
    public bool Dead { get; set; }

    /// <summary>Guest writes since a walk last used this table; many in a row mean the page is no longer a page table.</summary>
    public int WritesSinceUse { get; set; }

    /// <summary>The next shadow of the same guest frame (at another level).</summary>
    public ShadowTable? NextInFrame { get; set; }
}
