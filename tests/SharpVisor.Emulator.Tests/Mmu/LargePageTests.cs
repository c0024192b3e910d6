using SharpVisor.Emulator.Mmu;
using SharpVisor.Memory;
using static SharpVisor.Emulator.Tests.Mmu.PageTables;

namespace SharpVisor.Emulator.Tests.Mmu;

// The CPU core has its own IMmu and TlbEntry in SharpVisor.Emulator; these tests mean the MMU's.
using IMmu = SharpVisor.Emulator.Mmu.IMmu;
using TlbEntry = SharpVisor.Emulator.Mmu.TlbEntry;

/// <summary>2 MiB, 1 GiB and 4 MiB pages, in both MMU modes.</summary>
public class LargePageTests
{
    public static TheoryData<MmuMode> Modes => MmuHarness.Modes;

    [Theory]
    [MemberData(nameof(Modes))]
    public void TwoMiBPageIn4LevelPaging(MmuMode mode)
    {
        using var h = new MmuHarness(mode);
        h.Tables.Map(0x4000_0000, 0x40_0000, P | RW, pageSize: 2 << 20);
        h.EnablePaging();
        MmuAssert.Ram(h.Translate(0x4000_0000), 0x40_0000);
        MmuAssert.Ram(h.Translate(0x401F_F123, PageAccess.Write), 0x5F_F123);
        MmuAssert.Fault(h.Translate(0x4020_0000), 0x0, 0x4020_0000);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void OneGiBPageIn4LevelPaging(MmuMode mode)
    {
        using var h = new MmuHarness(mode);
        h.Tables.Map(0xFFFF_8880_0000_0000, 0, P | RW | G, pageSize: 1 << 30);
        h.EnablePaging();
        MmuAssert.Ram(h.Translate(0xFFFF_8880_0123_4567), 0x123_4567);
        MmuAssert.Mmio(h.Translate(0xFFFF_8880_3FFF_F000), 0x3FFF_F000); // mapped beyond the 32 MiB of RAM
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void OneGiBPagesAreReservedWhenTheCpuLacksThem(MmuMode mode)
    {
        using var h = new MmuHarness(mode, options: new MmuOptions { Supports1GiBPages = false });
        h.Tables.Map(0x80_0000_0000, 0, P | RW, pageSize: 1 << 30);
        h.EnablePaging();
        MmuAssert.Fault(h.Translate(0x80_0000_1000), 0x9, 0x80_0000_1000);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void TwoMiBPageInPaePaging(MmuMode mode)
    {
        using var h = new MmuHarness(mode, PagingMode.Pae);
        h.Tables.Map(0xC060_0000, 0x20_0000, P | RW, pageSize: 2 << 20);
        h.EnablePaging();
        MmuAssert.Ram(h.Translate(0xC07F_FFFF), 0x3F_FFFF);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void FourMiBPageIn32BitPagingWithPse(MmuMode mode)
    {
        using var h = new MmuHarness(mode, PagingMode.Legacy32);
        h.Tables.Map(0xC080_0000, 0x40_0000, P | RW, pageSize: 4 << 20);
        h.EnablePaging();
        MmuAssert.Ram(h.Translate(0xC0AB_CDEF), 0x6B_CDEF);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void WithoutCr4PseThePsBitIsIgnored(MmuMode mode)
    {
        using var h = new MmuHarness(mode, PagingMode.Legacy32);
        h.Tables.Map(0xC080_0000, 0x40_0000, P | RW, pageSize: 4 << 20);
        h.Memory.Fill(0x40_0000, 4096, 0);
        h.EnablePaging();
        Assert.True(h.Mmu.OnCr4Write(h.Cr4 & ~MmuHarness.Cr4Pse));

        // The PDE now points to a page table at 0x400000, whose entries are all zero.
        MmuAssert.Fault(h.Translate(0xC0AB_CDEF), 0x0, 0xC0AB_CDEF);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void Pse36MapsFourMiBPagesAbove4GiB(MmuMode mode)
    {
        var memory = new GuestMemory();
        memory.AddRegion(0, 32 << 20);
        memory.AddRegion(0x1_0000_0000, 4 << 20);
        using var h = new MmuHarness(mode, PagingMode.Legacy32, memory);
        h.Tables.Map(0x0040_0000, 0x1_0000_0000, P | RW, pageSize: 4 << 20);
        h.EnablePaging();
        MmuAssert.Ram(h.Translate(0x0052_3456, PageAccess.Write), 0x1_0012_3456);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void Pse36BitsAboveMaxPhysAddrAreReserved(MmuMode mode)
    {
        using var h = new MmuHarness(mode, PagingMode.Legacy32, options: new MmuOptions { PhysicalAddressBits = 36 });
        ulong pde = h.Tables.Map(0x0040_0000, 0x40_0000, P | RW, pageSize: 4 << 20);
        h.Tables.Update(pde, set: 1UL << 17); // physical-address bit 36
        h.EnablePaging();
        MmuAssert.Fault(h.Translate(0x0040_0000), 0x9, 0x0040_0000);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void InvlpgAnywhereInALargePageDropsAllOfIt(MmuMode mode)
    {
        using var h = new MmuHarness(mode);
        ulong pde = h.Tables.Map(0x4000_0000, 0x40_0000, P | RW, pageSize: 2 << 20);
        h.EnablePaging();
        MmuAssert.Ram(h.Translate(0x4000_0000), 0x40_0000);
        MmuAssert.Ram(h.Translate(0x4010_0000), 0x50_0000);

        // Remap behind the MMU's back (as DMA would), then INVLPG one address of the page.
        h.Tables.Write(pde, 0x60_0000 | P | RW | PS);
        MmuAssert.Ram(h.Translate(0x4010_0000), 0x50_0000);
        h.Mmu.FlushPage(0x401F_F000);
        MmuAssert.Ram(h.Translate(0x4000_0000), 0x60_0000);
        MmuAssert.Ram(h.Translate(0x4010_0000), 0x70_0000);
    }
}
