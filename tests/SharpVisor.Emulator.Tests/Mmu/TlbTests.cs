using SharpVisor.Emulator.Mmu;
using SharpVisor.Machine;
using static SharpVisor.Emulator.Tests.Mmu.PageTables;

namespace SharpVisor.Emulator.Tests.Mmu;

// The CPU core has its own IMmu and TlbEntry in SharpVisor.Emulator; these tests mean the MMU's.
using IMmu = SharpVisor.Emulator.Mmu.IMmu;
using TlbEntry = SharpVisor.Emulator.Mmu.TlbEntry;

/// <summary>TLB behaviour both modes share: hits, global pages, INVLPG, CR3 loads and privilege contexts.</summary>
public class TlbTests
{
    private const ulong UserLinear = 0x0000_0000_0040_5000; // not in KernelLinear's TLB slot
    private const ulong KernelLinear = 0xFFFF_FFFF_8100_0000;
    private const ulong Page = 0x80_0000;

    public static TheoryData<MmuMode> Modes => MmuHarness.Modes;

    [Theory]
    [MemberData(nameof(Modes))]
    public void SecondTranslationOfAPageIsATlbHit(MmuMode mode)
    {
        using var h = new MmuHarness(mode);
        h.Tables.Map(UserLinear, Page, P | RW | US);
        h.EnablePaging();
        MmuAssert.Ram(h.Translate(UserLinear, PageAccess.User), Page);
        MmuAssert.Ram(h.Translate(UserLinear + 0xFFF, PageAccess.User), Page + 0xFFF);
        Assert.Equal(1, h.Mmu.Counters.Walks);
        Assert.Equal(1, h.Mmu.Counters.TlbHits);
        Assert.Equal(2, h.Mmu.Counters.Translations);
    }

    /// <summary>
    /// The default TLB holds a kernel's working set of a few thousand pages: with 1024 slots a
    /// default-guest boot refilled it 4.1 M times, with 4096 0.3 M (docs/emulator.md, "Twelfth step").
    /// </summary>
    [Theory]
    [MemberData(nameof(Modes))]
    public void AWorkingSetOfFourThousandPagesStaysInTheTlb(MmuMode mode)
    {
        const int pages = 4096;
        using var h = new MmuHarness(mode);
        for (int i = 0; i < pages; i++)
        {
            h.Tables.Map(KernelLinear + ((ulong)i << 12), Page, P | RW | G);
        }

        h.EnablePaging(cr4: VcpuState.Cr4Pge);
        for (int i = 0; i < pages; i++)
        {
            MmuAssert.Ram(h.Translate(KernelLinear + ((ulong)i << 12) + 8), Page + 8);
        }

        long walks = h.Mmu.Counters.Walks;
        long hits = h.Mmu.Counters.TlbHits;
        for (int i = 0; i < pages; i++)
        {
            MmuAssert.Ram(h.Translate(KernelLinear + ((ulong)i << 12) + 16), Page + 16);
        }

        Assert.Equal(walks, h.Mmu.Counters.Walks);
        Assert.Equal(hits + pages, h.Mmu.Counters.TlbHits);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void GlobalPagesSurviveCr3LoadsOnlyUnderCr4Pge(MmuMode mode)
    {
        using var h = new MmuHarness(mode);
        h.Tables.Map(KernelLinear, Page, P | RW | G);
        h.Tables.Map(UserLinear, Page + 0x1000, P | RW | US);
        h.EnablePaging(cr4: VcpuState.Cr4Pge);
        h.Translate(KernelLinear);
        h.Translate(UserLinear);

        Assert.True(h.Mmu.OnCr3Write(h.Tables.Root));
        Assert.True(h.Mmu.Tlb.TryLookup(KernelLinear, PageAccess.Read, out _, out _));
        Assert.False(h.Mmu.Tlb.TryLookup(UserLinear, PageAccess.Read, out _, out _));
        long hits = h.Mmu.Counters.TlbHits;
        MmuAssert.Ram(h.Translate(KernelLinear + 4), Page + 4);
        Assert.Equal(hits + 1, h.Mmu.Counters.TlbHits);

        // Many CR3 loads in a row keep it too.
        for (int i = 0; i < 100; i++)
        {
            Assert.True(h.Mmu.OnCr3Write(h.Tables.Root));
        }

        Assert.True(h.Mmu.Tlb.TryLookup(KernelLinear, PageAccess.Read, out _, out _));

        // Clearing CR4.PGE flushes globals, and without it G means nothing.
        Assert.True(h.Mmu.OnCr4Write(h.Cr4 & ~VcpuState.Cr4Pge));
        Assert.False(h.Mmu.Tlb.TryLookup(KernelLinear, PageAccess.Read, out _, out _));
        h.Translate(KernelLinear);
        Assert.True(h.Mmu.OnCr3Write(h.Tables.Root));
        Assert.False(h.Mmu.Tlb.TryLookup(KernelLinear, PageAccess.Read, out _, out _));
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void InvlpgDropsAStaleTranslationGlobalOrNot(MmuMode mode)
    {
        using var h = new MmuHarness(mode);
        ulong pte = h.Tables.Map(KernelLinear, Page, P | RW | G);
        h.EnablePaging(cr4: VcpuState.Cr4Pge);
        MmuAssert.Ram(h.Translate(KernelLinear), Page);

        // A change the MMU cannot see (not a CPU store): like a hardware TLB, the old translation stays until INVLPG.
        h.Tables.Write(pte, (Page + 0x5000) | P | RW | G);
        Assert.True(h.Mmu.OnCr3Write(h.Tables.Root));
        MmuAssert.Ram(h.Translate(KernelLinear), Page);
        h.Mmu.FlushPage(KernelLinear + 0x800);
        MmuAssert.Ram(h.Translate(KernelLinear), Page + 0x5000);
        Assert.Equal(1, h.Mmu.Counters.PageInvalidations);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void Cr3LoadSwitchesAddressSpaces(MmuMode mode)
    {
        using var h = new MmuHarness(mode);
        h.Tables.Map(UserLinear, Page, P | RW | US);
        PageTables other = h.Tables.NewAddressSpace();
        other.Map(UserLinear, Page + 0x3000, P | RW | US);
        h.EnablePaging();

        MmuAssert.Ram(h.Translate(UserLinear, PageAccess.User), Page);
        Assert.True(h.Mmu.OnCr3Write(other.Root));
        MmuAssert.Ram(h.Translate(UserLinear, PageAccess.User), Page + 0x3000);
        Assert.True(h.Mmu.OnCr3Write(h.Tables.Root));
        MmuAssert.Ram(h.Translate(UserLinear, PageAccess.User), Page);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void ASupervisorFillDoesNotLetUserAccessesThrough(MmuMode mode)
    {
        using var h = new MmuHarness(mode);
        h.Tables.Map(KernelLinear, Page, P | RW | D);
        h.EnablePaging();
        MmuAssert.Ram(h.Translate(KernelLinear, PageAccess.Write), Page);
        Assert.False(h.Mmu.Tlb.TryGetHostAddress(KernelLinear, PageAccess.User, out _));
        MmuAssert.Fault(h.Translate(KernelLinear, PageAccess.User), 0x5, KernelLinear);
        MmuAssert.Fault(h.Translate(KernelLinear, PageAccess.User | PageAccess.Write), 0x7, KernelLinear);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void TheTlbKeepsPerAccessRights(MmuMode mode)
    {
        using var h = new MmuHarness(mode);
        h.Tables.Map(UserLinear, Page, P | US | NX | D);
        h.EnablePaging();
        MmuAssert.Ram(h.Translate(UserLinear, PageAccess.User), Page);
        MmuAssert.Fault(h.Translate(UserLinear, PageAccess.User | PageAccess.Write), 0x7, UserLinear);
        MmuAssert.Fault(h.Translate(UserLinear, PageAccess.User | PageAccess.Execute), 0x15, UserLinear);
        Assert.True(h.Mmu.Tlb.TryGetHostAddress(UserLinear, PageAccess.User, out _));
        Assert.False(h.Mmu.Tlb.TryGetHostAddress(UserLinear, PageAccess.User | PageAccess.Write, out _));
        Assert.False(h.Mmu.Tlb.TryGetHostAddress(UserLinear, PageAccess.User | PageAccess.Execute, out _));
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void FlushAllDropsEverything(MmuMode mode)
    {
        using var h = new MmuHarness(mode);
        h.Tables.Map(KernelLinear, Page, P | RW | G);
        h.EnablePaging(cr4: VcpuState.Cr4Pge);
        h.Translate(KernelLinear);
        h.Mmu.FlushAll();
        Assert.False(h.Mmu.Tlb.TryGetHostAddress(KernelLinear, PageAccess.Read, out _));
        MmuAssert.Ram(h.Translate(KernelLinear), Page);
    }
}
