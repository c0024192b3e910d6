using SharpVisor.Memory;

namespace SharpVisor.Emulator.Mmu;

/// <summary>Creates a vCPU's MMU for the mode its domain chose (<c>--mmu shadow|nested</c>).</summary>
public static class MmuFactory
{
    /// <param name="secondLevel">Nested mode: the domain's second-level table, built once with <see cref="SecondLevelTable.Build"/>.</param>
    /// <param name="tracker">The domain's write tracker, shared by its vCPUs (null: a lone CPU's own).</param>
    public static IMmu Create(MmuMode mode, GuestMemory memory, SecondLevelTable? secondLevel = null, MmuOptions? options = null, WriteTracker? tracker = null) => mode switch
    {
        MmuMode.Shadow => new ShadowMmu(memory, options, tracker),
        MmuMode.Nested => new NestedMmu(memory, secondLevel ?? throw new ArgumentNullException(nameof(secondLevel), "nested paging needs the domain's second-level table"), options, tracker),
        _ => throw new ArgumentOutOfRangeException(nameof(mode), mode, "unknown MMU mode"),
    };
}
