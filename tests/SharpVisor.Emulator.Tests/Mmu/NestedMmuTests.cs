using SharpVisor.Emulator.Mmu;
using SharpVisor.Memory;
using static SharpVisor.Emulator.Tests.Mmu.PageTables;

namespace SharpVisor.Emulator.Tests.Mmu;

// The CPU core has its own IMmu and TlbEntry in SharpVisor.Emulator; these tests mean the MMU's.
using IMmu = SharpVisor.Emulator.Mmu.IMmu;
using TlbEntry = SharpVisor.Emulator.Mmu.TlbEntry;

/// <summary>What only nested paging does: two walks per miss, second-level rights, hardware TLB semantics.</summary>
public class NestedMmuTests
{
    private const ulong Linear = 0x0000_0000_0040_0000;
    private const ulong Page = 0x80_0000;

    [Fact]
    public void A4LevelMissWalksTheGuestTablesThroughTheSecondLevel()
    {
        using var h = new MmuHarness(MmuMode.Nested);
        h.Tables.Map(Linear, Page, P | RW | US);
        h.Tables.Map(0x4000_0000, 0x20_0000, P | RW, pageSize: 2 << 20);
        h.EnablePaging();

        MmuAssert.Ram(h.Translate(Linear), Page);
        Assert.Equal(1, h.Mmu.Counters.Walks);
        Assert.Equal(5, h.Mmu.Counters.NestedWalks); // four guest entries, then the page itself

        h.Translate(Linear + 8);
        Assert.Equal(5, h.Mmu.Counters.NestedWalks); // a TLB hit walks nothing

        MmuAssert.Ram(h.Translate(0x4000_0000), 0x20_0000);
        Assert.Equal(9, h.Mmu.Counters.NestedWalks); // three entries and the page

        // Nothing but the TLB is cached: every miss does both walks again.
        h.Mmu.FlushAll();
        h.Translate(Linear);
        Assert.Equal(3, h.Mmu.Counters.Walks);
        Assert.Equal(14, h.Mmu.Counters.NestedWalks);
    }

    [Fact]
    public void PaeLoadsPdptesThroughTheSecondLevel()
    {
        using var h = new MmuHarness(MmuMode.Nested, PagingMode.Pae);
        h.Tables.Map(0xC000_1000, Page, P | RW);
        h.EnablePaging();
        Assert.Equal(4, h.Mmu.Counters.NestedWalks);
        MmuAssert.Ram(h.Translate(0xC000_1000), Page);
        Assert.Equal(7, h.Mmu.Counters.NestedWalks);
    }

    [Fact]
    public void LegacyAndPagingOffWalkCounts()
    {
        using var h = new MmuHarness(MmuMode.Nested, PagingMode.Legacy32);
        h.Translate(0x1000);
        Assert.Equal(1, h.Mmu.Counters.NestedWalks);
        Assert.Equal(0, h.Mmu.Counters.Walks);

        h.Tables.Map(0xC000_1000, Page, P | RW);
        h.EnablePaging();
        h.Translate(0xC000_1000);
        Assert.Equal(4, h.Mmu.Counters.NestedWalks);
        Assert.Equal(1, h.Mmu.Counters.Walks);
    }

    [Fact]
    public void WritesToReadOnlyRegionsAreSecondLevelViolations()
    {
        var memory = new GuestMemory();
        memory.AddRegion(0, 32 << 20);
        memory.AddRegion(0xFFF0_0000, 1 << 20, readOnly: true, name: "bios");
        using var h = new MmuHarness(MmuMode.Nested, memory: memory);
        h.Tables.Map(Linear, 0xFFF0_0000, P | RW | D);
        h.EnablePaging();

        MmuAssert.Ram(h.Translate(Linear + 0x10, PageAccess.Execute), 0xFFF0_0010);
        MmuAssert.Ram(h.Translate(Linear + 0x10), 0xFFF0_0010);
        Assert.Equal(0, h.Mmu.Counters.NestedViolations);
        MmuAssert.Mmio(h.Translate(Linear + 0x10, PageAccess.Write), 0xFFF0_0010);
        Assert.Equal(1, h.Mmu.Counters.NestedViolations);
        Assert.False(h.Mmu.Tlb.TryGetHostAddress(Linear, PageAccess.Write, out _));
    }

    [Fact]
    public void APageTableInTheMmioHoleIsAViolationReadAsAllOnes()
    {
        using var h = new MmuHarness(MmuMode.Nested);
        h.Tables.Map(Linear, Page, P | RW | US);
        h.Tables.Write(h.Tables.EntryAddressOf(Linear, 4), 0xFEE0_0000 | P | RW | US);
        h.EnablePaging();
        MmuAssert.Fault(h.Translate(Linear), 0x9, Linear);
        Assert.Equal(1, h.Mmu.Counters.NestedViolations);
    }

    [Fact]
    public void LikeAHardwareTlbItIsNotCoherentWithPageTableStores()
    {
        using var h = new MmuHarness(MmuMode.Nested);
        ulong pte = h.Tables.Map(Linear, Page, P | RW | US);
        h.Tables.Map(0x7012_3000, pte & ~0xFFFUL, P | RW); // the page table, mapped for the guest to edit (another TLB slot)
        h.EnablePaging();
        h.Translate(Linear);

        Translation store = h.Store(0x7012_3000 + (pte & 0xFFF), (Page + 0x2000) | P | RW | US);
        Assert.False(store.WriteTracked);
        MmuAssert.Ram(h.Translate(Linear), Page);
        h.Mmu.FlushPage(Linear);
        MmuAssert.Ram(h.Translate(Linear), Page + 0x2000);
    }

    [Fact]
    public void MmuFactoryNeedsTheSecondLevelTableForNestedMode()
    {
        using GuestMemory memory = GuestMemory.CreateRam(4 << 20);
        Assert.Throws<ArgumentNullException>(() => MmuFactory.Create(MmuMode.Nested, memory));
        Assert.IsType<ShadowMmu>(MmuFactory.Create(MmuMode.Shadow, memory));
    }
}
