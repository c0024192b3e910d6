using SharpVisor.Emulator.Mmu;
using SharpVisor.Memory;
using static SharpVisor.Emulator.Tests.Mmu.PageTables;

namespace SharpVisor.Emulator.Tests.Mmu;

// The CPU core has its own IMmu and TlbEntry in SharpVisor.Emulator; these tests mean the MMU's.
using IMmu = SharpVisor.Emulator.Mmu.IMmu;
using TlbEntry = SharpVisor.Emulator.Mmu.TlbEntry;

/// <summary>Accessed and dirty bits, in both MMU modes.</summary>
public class AccessedDirtyTests
{
    private const ulong Linear = 0x0000_0040_0020_3000;
    private const ulong Page = 0x80_0000;

    public static TheoryData<MmuMode> Modes => MmuHarness.Modes;

    [Theory]
    [MemberData(nameof(Modes))]
    public void ReadSetsAccessedAtEveryLevelAndWriteSetsDirtyOnTheLeaf(MmuMode mode)
    {
        using var h = new MmuHarness(mode);
        h.Tables.Map(Linear, Page, P | RW);
        h.EnablePaging();

        MmuAssert.Ram(h.Translate(Linear), Page);
        for (int level = 4; level >= 1; level--)
        {
            ulong entry = h.Tables.Read(h.Tables.EntryAddressOf(Linear, level));
            Assert.Equal(A, entry & A);
            Assert.Equal(0UL, entry & D);
        }

        MmuAssert.Ram(h.Translate(Linear + 8, PageAccess.Write), Page + 8);
        Assert.Equal(A | D, h.Tables.Read(h.Tables.EntryAddressOf(Linear, 1)) & (A | D));
        Assert.Equal(0UL, h.Tables.Read(h.Tables.EntryAddressOf(Linear, 2)) & D);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void TheTlbGrantsWritesOnlyOnceTheDirtyBitIsSet(MmuMode mode)
    {
        using var h = new MmuHarness(mode);
        ulong pte = h.Tables.Map(Linear, Page, P | RW);
        h.EnablePaging();

        MmuAssert.Ram(h.Translate(Linear), Page);
        Assert.True(h.Mmu.Tlb.TryGetHostAddress(Linear, PageAccess.Read, out _));
        Assert.False(h.Mmu.Tlb.TryGetHostAddress(Linear, PageAccess.Write, out _));

        MmuAssert.Ram(h.Translate(Linear, PageAccess.Write), Page);
        Assert.Equal(D, h.Tables.Read(pte) & D);
        Assert.True(h.Mmu.Tlb.TryGetHostAddress(Linear + 0x10, PageAccess.Write, out nint host));
        Assert.Equal(h.Translate(Linear).HostAddress + 0x10, host);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void LargePageLeafGetsAccessedAndDirty(MmuMode mode)
    {
        using var h = new MmuHarness(mode);
        ulong pde = h.Tables.Map(0x4000_0000, 0x40_0000, P | RW, pageSize: 2 << 20);
        h.EnablePaging();
        MmuAssert.Ram(h.Translate(0x4000_1000, PageAccess.Write), 0x40_1000);
        Assert.Equal(A | D, h.Tables.Read(pde) & (A | D));
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void FaultingAccessesSetNoBits(MmuMode mode)
    {
        using var h = new MmuHarness(mode);
        ulong pte = h.Tables.Map(Linear, Page, P);
        h.EnablePaging();
        MmuAssert.Fault(h.Translate(Linear, PageAccess.Write), 0x3, Linear);
        MmuAssert.Fault(h.Translate(Linear, PageAccess.User), 0x5, Linear);
        for (int level = 4; level >= 1; level--)
        {
            Assert.Equal(0UL, h.Tables.Read(h.Tables.EntryAddressOf(Linear, level)) & (A | D));
        }

        Assert.Equal(0UL, h.Tables.Read(pte) & (A | D));
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void LegacyEntriesGetAccessedAndDirty(MmuMode mode)
    {
        using var h = new MmuHarness(mode, PagingMode.Legacy32);
        ulong pte = h.Tables.Map(0xC000_1000, Page, P | RW);
        h.EnablePaging();
        MmuAssert.Ram(h.Translate(0xC000_1000, PageAccess.Write), Page);
        Assert.Equal(A | D, h.Tables.Read(pte) & (A | D));
        Assert.Equal(A, h.Tables.Read(h.Tables.EntryAddressOf(0xC000_1000, 2)) & (A | D));
        Assert.Equal(0u, h.Memory.Read<uint>(pte + 4)); // the 4-byte update did not spill into the next entry
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void TablesInReadOnlyMemoryAreUsedButNotUpdated(MmuMode mode)
    {
        var memory = new GuestMemory();
        memory.AddRegion(0, 32 << 20);
        memory.AddRegion(0x200_0000, 1 << 20, readOnly: true);
        using var h = new MmuHarness(mode, memory: memory);
        var rom = new PageTables(memory, PagingMode.FourLevel, tableArea: 0x200_0000);
        ulong pte = rom.Map(Linear, Page, P | RW);
        h.EnablePaging();
        Assert.True(h.Mmu.OnCr3Write(rom.Root));

        MmuAssert.Ram(h.Translate(Linear, PageAccess.Write), Page);
        Assert.Equal(0UL, rom.Read(pte) & (A | D));
    }
}
