namespace SharpVisor.Emulator.Mmu;

/// <summary>
/// What an MMU did, for benchmarks and the domain's statistics. One instance per vCPU (plain
/// fields, no atomics: only the vCPU thread writes); a domain sums its vCPUs with <see cref="Add"/>.
/// </summary>
public sealed class MmuCounters
{
    /// <summary>Calls to <see cref="IMmu.Translate"/>.</summary>
    public long Translations;

    /// <summary>Translations answered by the software TLB.</summary>
    public long TlbHits;

    /// <summary>Shadow mode: TLB misses answered from the shadow page tables without a guest walk.</summary>
    public long ShadowHits;

    /// <summary>Shadow mode: TLB misses that needed a guest page walk.</summary>
    public long ShadowMisses;

    /// <summary>Walks of the guest's page tables (GVA to GPA).</summary>
    public long Walks;

    /// <summary>Nested mode: walks of the second-level table (GPA to host), including those for guest page-table entries.</summary>
    public long NestedWalks;

    /// <summary>Nested mode: second-level walks that found no mapping or too few rights (EPT violations).</summary>
    public long NestedViolations;

    /// <summary>Translations that ended in a page fault.</summary>
    public long PageFaults;

    /// <summary>Translations that ended at a non-RAM guest-physical address.</summary>
    public long MmioTranslations;

    /// <summary>Full TLB flushes (CR3 loads, control-register changes, resets).</summary>
    public long TlbFlushes;

    /// <summary>Single-page invalidations (INVLPG).</summary>
    public long PageInvalidations;

    /// <summary>Shadow mode: writes to write-tracked guest page-table pages.</summary>
    public long TrackedWrites;

    /// <summary>Shadow mode: cached shadow entries dropped because the guest entry changed or INVLPG named it.</summary>
    public long ShadowInvalidations;

    /// <summary>Shadow mode: shadow tables created (guest page-table pages that became write-tracked).</summary>
    public long ShadowTablesCreated;

    /// <summary>Shadow mode: shadow tables dropped (write flooding, resets).</summary>
    public long ShadowTablesDropped;

    public MmuCounters Snapshot() => (MmuCounters)MemberwiseClone();

    /// <summary>Adds another vCPU's counters into this one.</summary>
    public void Add(MmuCounters other)
    {
        Translations += other.Translations;
        TlbHits += other.TlbHits;
        ShadowHits += other.ShadowHits;
        ShadowMisses += other.ShadowMisses;
        Walks += other.Walks;
        NestedWalks += other.NestedWalks;
        NestedViolations += other.NestedViolations;
        PageFaults += other.PageFaults;
        MmioTranslations += other.MmioTranslations;
        TlbFlushes += other.TlbFlushes;
        PageInvalidations += other.PageInvalidations;
        TrackedWrites += other.TrackedWrites;
        ShadowInvalidations += other.ShadowInvalidations;
        ShadowTablesCreated += other.ShadowTablesCreated;
        ShadowTablesDropped += other.ShadowTablesDropped;
    }

    public override string ToString() =>
        $"translations={Translations} tlb-hits={TlbHits} shadow-hits={ShadowHits} shadow-misses={ShadowMisses} " +
        $"walks={Walks} nested-walks={NestedWalks} nested-violations={NestedViolations} page-faults={PageFaults} " +
        $"mmio={MmioTranslations} tlb-flushes={TlbFlushes} invlpg={PageInvalidations} tracked-writes={TrackedWrites} " +
        $"shadow-invalidations={ShadowInvalidations} shadow-tables={ShadowTablesCreated}/-{ShadowTablesDropped}";
}
