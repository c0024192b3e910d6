namespace SharpVisor.Xen.Pv;

/// <summary>
/// What a machine frame of a PV domain is used as (Xen's PGT_* types). A frame holds at most one
/// type with a non-zero type count: writable or a page table of one level, never both.
/// </summary>
public enum PvPageType
{
    None = 0,
    L1 = 1,
    L2 = 2,
    L3 = 3,
    L4 = 4,
    SegmentDescriptor = 5,
    Writable = 6,
}
