namespace SharpVisor.Emulator.Mmu;

/// <summary>The software memory-virtualization technique a domain uses.</summary>
public enum MmuMode
{
    /// <summary>Shadow paging: cached, write-tracked copies of the guest's page tables.</summary>
    Shadow,

    /// <summary>Nested paging: a guest walk and a second-level (EPT-like) walk on every TLB miss.</summary>
    Nested,
}
