namespace SharpVisor.Xen.Pv;

/// <summary>
/// Xen's page_info for one machine frame: who owns it, its type with the count of references that
/// need that type, the count of all references, and whether it is pinned / validated as a table.
/// </summary>
internal struct PvPageFrame
{
    /// <summary>The owning domain's frame; false for the hypervisor's frames and holes.</summary>
    public bool Owned;

    public PvPageType Type;

    /// <summary>References that need <see cref="Type"/>: writable mappings, PT entries naming this table, pins, CR3s.</summary>
    public int TypeCount;

    /// <summary>Every reference: mappings of any kind, pins, CR3s.</summary>
    public int ReferenceCount;

    /// <summary>The guest pinned this table (MMUEXT_PIN_Ln_TABLE): it holds one type and one general reference.</summary>
    public bool Pinned;

    /// <summary>A table whose present entries were checked and hold their references.</summary>
    public bool Validated;

    /// <summary>
    /// A stand-in for another page (PvPageTables.GrantMaps): not the domain's, out of the free pool,
    /// its host page the granted one, named by exactly one granted L1 entry.
    /// </summary>
    public bool GrantMapped;
}
