using SharpVisor.Memory;

namespace SharpVisor.Emulator.Mmu;

/// <summary>
/// Nested paging, the way EPT/NPT hardware does it: every TLB miss walks the guest's tables
/// (GVA to GPA), fetching each guest entry through the second-level table, then walks the
/// second-level table for the final GPA. Nothing between misses is cached but the TLB, which
/// behaves as a hardware TLB: not coherent with page-table writes until INVLPG or a CR3 load.
/// Guest-physical addresses the second level does not map (or maps without the right needed:
/// a write to a read-only region) are EPT violations and translate to MMIO.
/// </summary>
public sealed class NestedMmu : MmuBase
{
    private readonly SecondLevelTable _secondLevel;

    /// <param name="secondLevel">The domain's second-level table (shared by its vCPUs; the domain disposes it).</param>
    /// <param name="tracker">The domain's write tracker (null: this vCPU's own).</param>
    public NestedMmu(GuestMemory memory, SecondLevelTable secondLevel, MmuOptions? options = null, WriteTracker? tracker = null)
        : base(memory, options, tracker)
    {
        _secondLevel = secondLevel;
    }

    public override MmuMode Mode => MmuMode.Nested;

    public SecondLevelTable SecondLevel => _secondLevel;

    protected override Translation TranslateMiss(ulong linear, PageAccess access)
    {
        Counters.Walks++;
        var memory = new NestedTableMemory(_secondLevel, Counters);
        if (!Walker.Walk(ref memory, linear, access, out PageWalk walk))
        {
            return Fault(walk.ErrorCode, linear);
        }

        return Complete(linear, access, walk.PhysicalAddress, walk.Rights, walk.PageSize);
    }

    protected override bool TryReadPdptes(ulong cr3, Span<ulong> pdptes)
    {
        var memory = new NestedTableMemory(_secondLevel, Counters);
        return Walker.TryReadPdptes(ref memory, cr3, pdptes);
    }

    protected override nint ResolvePage(ulong physicalPage, PageAccess access, out bool writable)
    {
        Counters.NestedWalks++;
        SecondLevelRights rights = _secondLevel.Translate(physicalPage, out nint host);
        SecondLevelRights needed = (access & PageAccess.Execute) != 0 ? SecondLevelRights.Execute
            : (access & PageAccess.Write) != 0 ? SecondLevelRights.Write
            : SecondLevelRights.Read;
        if ((rights & needed) == 0)
        {
            Counters.NestedViolations++;
            writable = false;
            return 0;
        }

        writable = (rights & SecondLevelRights.Write) != 0;
        return host;
    }
}
