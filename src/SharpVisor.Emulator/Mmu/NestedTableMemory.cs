namespace SharpVisor.Emulator.Mmu;

/// <summary>
/// Guest page-table entries fetched through the second-level table, as nested-paging hardware
/// fetches them: every entry read is a second-level walk. An entry no readable mapping backs
/// reads as all-ones (see <see cref="PageWalker"/>), counted as a violation.
/// </summary>
public readonly struct NestedTableMemory : IPageTableMemory
{
    private readonly SecondLevelTable _table;
    private readonly MmuCounters _counters;

    public NestedTableMemory(SecondLevelTable table, MmuCounters counters)
    {
        _table = table;
        _counters = counters;
    }

    public nint MapEntry(ulong physicalAddress, int size, out bool writable)
    {
        _counters.NestedWalks++;
        SecondLevelRights rights = _table.Translate(physicalAddress, out nint host);
        if ((rights & SecondLevelRights.Read) == 0)
        {
            _counters.NestedViolations++;
            writable = false;
            return 0;
        }

        writable = (rights & SecondLevelRights.Write) != 0;
        return host;
    }
}
