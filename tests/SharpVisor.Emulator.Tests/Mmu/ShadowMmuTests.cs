using SharpVisor.Emulator.Mmu;
using static SharpVisor.Emulator.Tests.Mmu.PageTables;

namespace SharpVisor.Emulator.Tests.Mmu;

// The CPU core has its own IMmu and TlbEntry in SharpVisor.Emulator; these tests mean the MMU's.
using IMmu = SharpVisor.Emulator.Mmu.IMmu;
using TlbEntry = SharpVisor.Emulator.Mmu.TlbEntry;

/// <summary>What only shadow paging does: cached tables shared across CR3s, write tracking, flood detection.</summary>
public class ShadowMmuTests
{
    private const ulong Linear = 0x0000_0000_0040_0000;
    private const ulong Kernel = 0xFFFF_FFFF_8100_0000;
    private const ulong Page = 0x80_0000;

    // The page-table area (0x100000...) is also mapped here, so the guest can store to its own tables.
    private const ulong TableAlias = 0x0000_0000_7000_0000;
    private const ulong TableArea = 0x10_0000;

    private static ulong AliasOf(ulong physical) => TableAlias + (physical - TableArea);

    [Fact]
    public void Cr3ReloadIsAnsweredFromTheShadowTables()
    {
        using var h = new MmuHarness(MmuMode.Shadow);
        h.Tables.Map(Linear, Page, P | RW | US);
        h.EnablePaging();
        MmuAssert.Ram(h.Translate(Linear), Page);
        Assert.True(h.Mmu.OnCr3Write(h.Tables.Root));
        MmuAssert.Ram(h.Translate(Linear), Page);
        Assert.Equal(1, h.Mmu.Counters.Walks);
        Assert.Equal(1, h.Mmu.Counters.ShadowHits);
        Assert.Equal(1, h.Mmu.Counters.ShadowMisses);
        Assert.Equal(4, ((ShadowMmu)h.Mmu).ShadowTableCount);
    }

    [Fact]
    public void AddressSpacesShareTheShadowsOfSharedGuestTables()
    {
        using var h = new MmuHarness(MmuMode.Shadow);
        h.Tables.Map(Kernel, Page, P | RW);
        h.Tables.Map(Kernel + 0x1000, Page + 0x1000, P | RW);
        PageTables process = h.Tables.NewAddressSpace();
        process.ShareTopLevelEntry(h.Tables, Kernel);
        h.EnablePaging();

        h.Translate(Kernel);
        h.Translate(Kernel + 0x1000);
        Assert.True(h.Mmu.OnCr3Write(process.Root));
        MmuAssert.Ram(h.Translate(Kernel), Page);                   // a walk: the new PML4 is not shadowed yet
        MmuAssert.Ram(h.Translate(Kernel + 0x1000), Page + 0x1000); // below it, all shared
        Assert.Equal(3, h.Mmu.Counters.Walks);
        Assert.Equal(1, h.Mmu.Counters.ShadowHits);
        Assert.Equal(5, h.Mmu.Counters.ShadowTablesCreated);
    }

    [Fact]
    public void AGuestStoreToAPageTableDropsWhatWasDerivedFromIt()
    {
        using var h = new MmuHarness(MmuMode.Shadow);
        ulong pte = h.Tables.Map(Linear, Page, P | RW | US);
        MapTableAlias(h);
        h.EnablePaging();
        MmuAssert.Ram(h.Translate(Linear), Page);
        Assert.True(h.Mmu.IsWriteTracked(pte));

        Translation store = h.Store(AliasOf(pte), (Page + 0x2000) | P | RW | US);
        Assert.True(store.WriteTracked);
        Assert.Equal(pte, store.PhysicalAddress);
        Assert.False(h.Mmu.Tlb.TryGetHostAddress(AliasOf(pte), PageAccess.Write, out _));

        // No INVLPG needed: the shadow saw the store.
        MmuAssert.Ram(h.Translate(Linear), Page + 0x2000);
        Assert.Equal(1, h.Mmu.Counters.ShadowInvalidations);
        Assert.Equal(1, h.Mmu.Counters.TrackedWrites);
    }

    [Fact]
    public void AStoreThatLeavesTheEntryAsItWasKeepsTheShadow()
    {
        using var h = new MmuHarness(MmuMode.Shadow);
        ulong pte = h.Tables.Map(Linear, Page, P | RW | US);
        MapTableAlias(h);
        h.EnablePaging();
        h.Translate(Linear);
        h.Store(AliasOf(pte), h.Tables.Read(pte));
        h.Store(AliasOf(pte + 8), 0); // an entry the shadow never cached
        Assert.Equal(0, h.Mmu.Counters.ShadowInvalidations);
        Assert.Equal(2, h.Mmu.Counters.TrackedWrites);
        Assert.True(h.Mmu.Tlb.TryGetHostAddress(Linear, PageAccess.Read, out _));
    }

    [Fact]
    public void StoresToOrdinaryPagesAreNotTracked()
    {
        using var h = new MmuHarness(MmuMode.Shadow);
        h.Tables.Map(Linear, Page, P | RW | US);
        h.EnablePaging();
        Translation store = h.Store(Linear, 42);
        Assert.False(store.WriteTracked);
        Assert.True(h.Mmu.Tlb.TryGetHostAddress(Linear, PageAccess.Write, out _));
        Assert.Equal(42UL, h.Memory.Read<ulong>(Page));
    }

    [Fact]
    public void APageThatBecomesAPageTableLosesItsTlbWriteTag()
    {
        using var h = new MmuHarness(MmuMode.Shadow);
        MapTableAlias(h);
        ulong pte = h.Tables.Map(Linear, Page, P | RW | US); // its page table is new, not yet walked
        h.EnablePaging();

        h.Store(AliasOf(pte + 8), 0);
        Assert.True(h.Mmu.Tlb.TryGetHostAddress(AliasOf(pte), PageAccess.Write, out _));

        MmuAssert.Ram(h.Translate(Linear), Page); // the walk starts tracking the table
        Assert.False(h.Mmu.Tlb.TryGetHostAddress(AliasOf(pte), PageAccess.Write, out _));
        Assert.True(h.Store(AliasOf(pte), (Page + 0x3000) | P | RW | US).WriteTracked);
        MmuAssert.Ram(h.Translate(Linear), Page + 0x3000);
    }

    [Fact]
    public void ChangingADirectoryEntryDropsTheWholeRangeBelowIt()
    {
        using var h = new MmuHarness(MmuMode.Shadow);
        h.Tables.Map(Linear, Page, P | RW | US);
        h.Tables.Map(Linear + 0x1000, Page + 0x1000, P | RW | US);
        MapTableAlias(h);
        h.EnablePaging();
        h.Translate(Linear);
        h.Translate(Linear + 0x1000);

        // Point the PDE at a fresh page table mapping the range elsewhere.
        ulong table = h.Tables.AllocateTable();
        h.Memory.Write(table, (Page + 0x8000) | P | RW | US);
        h.Memory.Write(table + 8, (Page + 0x9000) | P | RW | US);
        ulong pde = h.Tables.EntryAddressOf(Linear, 2);
        h.Store(AliasOf(pde), table | P | RW | US);

        MmuAssert.Ram(h.Translate(Linear), Page + 0x8000);
        MmuAssert.Ram(h.Translate(Linear + 0x1000), Page + 0x9000);
    }

    [Fact]
    public void APageTableReachedAtTwoAddressesIsInvalidatedAtBoth()
    {
        using var h = new MmuHarness(MmuMode.Shadow);
        ulong pte = h.Tables.Map(Linear, Page, P | RW | US);
        ulong pde = h.Tables.EntryAddressOf(Linear, 2);
        h.Tables.Write(pde + 8, h.Tables.Read(pde)); // the same page table again, 2 MiB higher
        MapTableAlias(h);
        h.EnablePaging();
        MmuAssert.Ram(h.Translate(Linear), Page);
        MmuAssert.Ram(h.Translate(Linear + 0x20_0000), Page);

        h.Store(AliasOf(pte), (Page + 0x4000) | P | RW | US);
        MmuAssert.Ram(h.Translate(Linear), Page + 0x4000);
        MmuAssert.Ram(h.Translate(Linear + 0x20_0000), Page + 0x4000);
    }

    [Fact]
    public void APageTableOverwrittenAsDataStopsBeingShadowed()
    {
        using var h = new MmuHarness(MmuMode.Shadow);
        ulong pte = h.Tables.Map(Linear, Page, P | RW | US);
        MapTableAlias(h);
        h.EnablePaging();
        h.Translate(Linear);
        ulong frame = pte & ~0xFFFUL;

        // The guest frees the table and clears it as a data page (memset).
        for (ulong offset = 0; offset < 4096; offset += 8)
        {
            h.Store(AliasOf(frame + offset), 0);
        }

        Assert.False(h.Mmu.IsWriteTracked(frame));
        Assert.True(h.Mmu.Counters.ShadowTablesDropped >= 1);
        Assert.True(h.Mmu.Counters.TrackedWrites <= MmuOptions.Default.WriteFloodThreshold + 1);
        MmuAssert.Fault(h.Translate(Linear), 0x0, Linear);

        // Used as a table again: shadowed again.
        h.Memory.Write(pte, (Page + 0x6000) | P | RW | US);
        MmuAssert.Ram(h.Translate(Linear), Page + 0x6000);
        Assert.True(h.Mmu.IsWriteTracked(frame));
    }

    [Fact]
    public void ExceedingTheShadowTableLimitStartsOverAndStaysCorrect()
    {
        using var h = new MmuHarness(MmuMode.Shadow, options: new MmuOptions { MaxShadowTables = 8 });
        for (ulong i = 0; i < 12; i++)
        {
            h.Tables.Map(Linear + (i << 21), Page + (i << 12), P | RW | US); // one page table each
        }

        h.EnablePaging();
        for (int round = 0; round < 2; round++)
        {
            for (ulong i = 0; i < 12; i++)
            {
                MmuAssert.Ram(h.Translate(Linear + (i << 21)), Page + (i << 12));
            }
        }

        Assert.True(((ShadowMmu)h.Mmu).ShadowTableCount <= 8);
        Assert.True(h.Mmu.Counters.ShadowTablesDropped > 0);
    }

    [Fact]
    public void LegacyPageTableStoresAreTrackedPerFourByteEntry()
    {
        using var h = new MmuHarness(MmuMode.Shadow, PagingMode.Legacy32);
        ulong pte = h.Tables.Map(0xC000_1000, Page, P | RW);
        h.Tables.Map(0xC000_2000, Page + 0x1000, P | RW);
        for (ulong i = 0; i < 16; i++)
        {
            h.Tables.Map(0xD000_0000 + (i << 12), TableArea + (i << 12), P | RW);
        }

        h.EnablePaging();
        h.Translate(0xC000_1000);
        h.Translate(0xC000_2000);

        // A 4-byte store to the first entry leaves the second entry's shadow alone.
        Translation t = h.Mmu.Translate(0xD000_0000 + (pte - TableArea), PageAccess.Write);
        Assert.True(t.WriteTracked);
        h.Memory.Write(t.PhysicalAddress, (uint)((Page + 0x5000) | P | RW));
        h.Mmu.OnGuestPhysicalWrite(t.PhysicalAddress, 4);
        Assert.Equal(1, h.Mmu.Counters.ShadowInvalidations);
        MmuAssert.Ram(h.Translate(0xC000_1000), Page + 0x5000);
        MmuAssert.Ram(h.Translate(0xC000_2000), Page + 0x1000);
    }

    [Fact]
    public void InvlpgDropsTheShadowLeaf()
    {
        using var h = new MmuHarness(MmuMode.Shadow);
        ulong pte = h.Tables.Map(Linear, Page, P | RW | US);
        h.EnablePaging();
        h.Translate(Linear);
        h.Tables.Write(pte, (Page + 0x7000) | P | RW | US); // e.g. DMA: not seen by the tracker
        Assert.True(h.Mmu.OnCr3Write(h.Tables.Root));
        MmuAssert.Ram(h.Translate(Linear), Page);      // still the shadow's copy
        h.Mmu.FlushPage(Linear);
        MmuAssert.Ram(h.Translate(Linear), Page + 0x7000);
        Assert.Equal(1, h.Mmu.Counters.ShadowInvalidations);
    }

    [Fact]
    public void AReportedBulkWriteInvalidatesEveryChangedEntryInIt()
    {
        using var h = new MmuHarness(MmuMode.Shadow);
        ulong first = h.Tables.Map(Linear, Page, P | RW | US);
        ulong second = h.Tables.Map(Kernel, Page + 0x1000, P | RW);
        h.EnablePaging();
        h.Translate(Linear);
        h.Translate(Kernel);

        // A device (or the loader) rewrites guest memory wholesale and reports it once.
        h.Tables.Write(first, (Page + 0x2000) | P | RW | US);
        h.Tables.Write(second, (Page + 0x3000) | P | RW);
        h.Mmu.OnGuestPhysicalWrite(0, 32 << 20);

        MmuAssert.Ram(h.Translate(Linear), Page + 0x2000);
        MmuAssert.Ram(h.Translate(Kernel), Page + 0x3000);
        Assert.Equal(2, h.Mmu.Counters.ShadowInvalidations);
    }

    private static void MapTableAlias(MmuHarness h)
    {
        for (ulong i = 0; i < 64; i++)
        {
            h.Tables.Map(TableAlias + (i << 12), TableArea + (i << 12), P | RW);
        }
    }
}
