namespace SharpVisor.Xen.Pv;

/// <summary>
/// One grant map of a PV domain (<see cref="PvPageTables.TryMapGrant"/>): the L1 entry the hypervisor
/// wrote (its table's machine frame and slot), the stand-in machine frame that entry names, and the
/// linear address it was mapped at (0 for a GNTMAP_contains_pte map, which names the entry itself).
/// </summary>
public readonly record struct PvGrantMapping(ulong Table, int Slot, ulong Frame, ulong LinearAddress, bool ReadOnly);
