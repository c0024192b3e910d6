namespace SharpVisor.Xen.Pv;

/// <summary>
/// A PV domain as the builder left it: the direct-paging state with the bootstrap L4 pinned, and
/// where everything is — virtual addresses for the guest, machine frames for the hypervisor.
/// </summary>
public sealed class PvDomainLayout
{
    public required PvPageTables Tables { get; init; }

    public required ulong Entry { get; init; }

    /// <summary>RSP at entry: the top of the bootstrap stack page.</summary>
    public required ulong StackPointer { get; init; }

    /// <summary>RSI at entry: start_info's virtual address.</summary>
    public required ulong StartInfo { get; init; }

    /// <summary>start_info's machine frame (the caller fills in the event channels it binds).</summary>
    public required ulong StartInfoFrame { get; init; }

    /// <summary>The pinned bootstrap L4's machine frame (vCPU 0's kernel base pointer).</summary>
    public required ulong L4Frame { get; init; }

    public required ulong SharedInfoFrame { get; init; }

    public required ulong ConsoleFrame { get; init; }

    public required ulong StoreFrame { get; init; }

    /// <summary>Per vCPU, the first of the 16 hypervisor frames for the PV CPU's GDT (guest pages 0-13, Xen's page 14-15).</summary>
    public required IReadOnlyList<ulong> GdtFrames { get; init; }

    /// <summary>The grant table's frames (hypervisor frames the domain may map: GNTTABOP_setup_table answers them).</summary>
    public required IReadOnlyList<ulong> GrantFrames { get; init; }

    /// <summary>The domain's RAM pages (start_info.nr_pages).</summary>
    public required int PageCount { get; init; }

    /// <summary>The end of the bootstrap mapping (virtual).</summary>
    public required ulong MappedEnd { get; init; }
}
