namespace SharpVisor.Emulator.Mmu;

/// <summary>The result of one walk of the guest's page tables.</summary>
public struct PageWalk
{
    /// <summary>The guest-physical address of the linear address.</summary>
    public ulong PhysicalAddress;

    /// <summary>The size of the page that maps it: 4 KiB, 2 MiB, 4 MiB or 1 GiB.</summary>
    public ulong PageSize;

    /// <summary>Rights combined over every level, plus the leaf's global and dirty flags.</summary>
    public PageRights Rights;

    /// <summary>When the walk faulted: the #PF error code.</summary>
    public PageFaultErrorCode ErrorCode;

    /// <summary>Paging-structure entries used, root first.</summary>
    public int Levels;

    /// <summary>The guest-physical address of each table walked (for PAE's first level, the PDPT that CR3 names).</summary>
    public PageWalkLevels Tables;

    /// <summary>Each entry used, as the walk left it in memory (accessed and dirty bits set).</summary>
    public PageWalkLevels Entries;
}
