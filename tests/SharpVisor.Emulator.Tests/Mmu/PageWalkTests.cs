using SharpVisor.Emulator.Mmu;
using static SharpVisor.Emulator.Tests.Mmu.PageTables;

namespace SharpVisor.Emulator.Tests.Mmu;

// The CPU core has its own IMmu and TlbEntry in SharpVisor.Emulator; these tests mean the MMU's.
using IMmu = SharpVisor.Emulator.Mmu.IMmu;
using TlbEntry = SharpVisor.Emulator.Mmu.TlbEntry;

/// <summary>4-level translations and the exact #PF error codes, in both MMU modes.</summary>
public class PageWalkTests
{
    private const ulong UserLinear = 0x0000_7F00_1234_5000;
    private const ulong KernelLinear = 0xFFFF_8880_0040_3000;
    private const ulong Page = 0x80_0000;

    public static TheoryData<MmuMode> Modes => MmuHarness.Modes;

    public static TheoryData<MmuMode, int> ModesAndLevels
    {
        get
        {
            var data = new TheoryData<MmuMode, int>();
            foreach (MmuMode mode in new[] { MmuMode.Shadow, MmuMode.Nested })
            {
                for (int level = 4; level >= 1; level--)
                {
                    data.Add(mode, level);
                }
            }

            return data;
        }
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public unsafe void TranslatesA4KiBPageToItsHostMemory(MmuMode mode)
    {
        using var h = new MmuHarness(mode);
        h.Tables.Map(UserLinear, Page, P | RW | US);
        h.Tables.Map(KernelLinear, Page + 0x1000, P | RW);
        h.EnablePaging();

        Translation user = h.Translate(UserLinear + 0x123, PageAccess.User);
        MmuAssert.Ram(user, Page + 0x123);
        MmuAssert.Ram(h.Translate(KernelLinear + 0xFF8, PageAccess.Write), Page + 0x1FF8);

        h.Memory.Write<uint>(Page + 0x123, 0xDEADBEEF);
        Assert.Equal(0xDEADBEEFu, *(uint*)user.HostAddress);
    }

    [Theory]
    [MemberData(nameof(ModesAndLevels))]
    public void NotPresentAtAnyLevelFaultsWithPresentClear(MmuMode mode, int level)
    {
        using var h = new MmuHarness(mode);
        h.Tables.Map(UserLinear, Page, P | RW | US);
        h.Tables.Update(h.Tables.EntryAddressOf(UserLinear, level), set: 0, clear: P);
        h.EnablePaging();

        MmuAssert.Fault(h.Translate(UserLinear + 8), 0x0, UserLinear + 8);
        MmuAssert.Fault(h.Translate(UserLinear, PageAccess.Write), 0x2, UserLinear);
        MmuAssert.Fault(h.Translate(UserLinear, PageAccess.User), 0x4, UserLinear);
        MmuAssert.Fault(h.Translate(UserLinear, PageAccess.User | PageAccess.Write), 0x6, UserLinear);
        MmuAssert.Fault(h.Translate(UserLinear, PageAccess.User | PageAccess.Execute), 0x14, UserLinear);
        Assert.Equal(5, h.Mmu.Counters.PageFaults);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void SupervisorWriteToReadOnlyPageFaultsOnlyUnderCr0Wp(MmuMode mode)
    {
        using var h = new MmuHarness(mode);
        h.Tables.Map(KernelLinear, Page, P);
        h.EnablePaging(wp: true);
        MmuAssert.Fault(h.Translate(KernelLinear, PageAccess.Write), 0x3, KernelLinear);
        MmuAssert.Ram(h.Translate(KernelLinear), Page);

        Assert.True(h.Mmu.OnCr0Write(h.Cr0 & ~Machine.VcpuState.Cr0WriteProtect));
        MmuAssert.Ram(h.Translate(KernelLinear, PageAccess.Write), Page);
        MmuAssert.Ram(h.Translate(KernelLinear + 0x10, PageAccess.Write | PageAccess.Implicit), Page + 0x10);

        // Turning WP back on must not leave a writable TLB entry behind.
        Assert.True(h.Mmu.OnCr0Write(h.Cr0));
        MmuAssert.Fault(h.Translate(KernelLinear, PageAccess.Write), 0x3, KernelLinear);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void ReadOnlyAtAnUpperLevelMakesThePageReadOnly(MmuMode mode)
    {
        using var h = new MmuHarness(mode);
        h.Tables.Map(UserLinear, Page, P | RW | US);
        h.Tables.Update(h.Tables.EntryAddressOf(UserLinear, 3), set: 0, clear: RW);
        h.EnablePaging();
        MmuAssert.Ram(h.Translate(UserLinear, PageAccess.User), Page);
        MmuAssert.Fault(h.Translate(UserLinear, PageAccess.Write), 0x3, UserLinear);
        MmuAssert.Fault(h.Translate(UserLinear, PageAccess.User | PageAccess.Write), 0x7, UserLinear);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void UserWriteToReadOnlyPageFaultsEvenWithoutWp(MmuMode mode)
    {
        using var h = new MmuHarness(mode);
        h.Tables.Map(UserLinear, Page, P | US);
        h.EnablePaging(wp: false);
        MmuAssert.Ram(h.Translate(UserLinear, PageAccess.User), Page);
        MmuAssert.Fault(h.Translate(UserLinear, PageAccess.User | PageAccess.Write), 0x7, UserLinear);
        MmuAssert.Ram(h.Translate(UserLinear, PageAccess.Write), Page); // supervisor, WP = 0
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void UserAccessToSupervisorPageFaults(MmuMode mode)
    {
        using var h = new MmuHarness(mode);
        h.Tables.Map(KernelLinear, Page, P | RW);
        h.Tables.Map(UserLinear, Page, P | RW | US, tableFlags: P | RW); // U/S clear at the upper levels only
        h.EnablePaging();

        MmuAssert.Fault(h.Translate(KernelLinear, PageAccess.User), 0x5, KernelLinear);
        MmuAssert.Fault(h.Translate(KernelLinear, PageAccess.User | PageAccess.Write), 0x7, KernelLinear);
        MmuAssert.Fault(h.Translate(KernelLinear, PageAccess.User | PageAccess.Execute), 0x15, KernelLinear);
        MmuAssert.Fault(h.Translate(UserLinear, PageAccess.User), 0x5, UserLinear);

        // An implicit access (descriptor tables) is supervisor even at CPL 3.
        MmuAssert.Ram(h.Translate(KernelLinear, PageAccess.User | PageAccess.Implicit), Page);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void FetchFromNoExecutePageFaults(MmuMode mode)
    {
        using var h = new MmuHarness(mode);
        h.Tables.Map(KernelLinear, Page, P | RW | NX);
        h.Tables.Map(UserLinear, Page, P | RW | US | NX);
        h.Tables.Map(UserLinear + 0x1000, Page, P | RW | US);
        h.EnablePaging();

        MmuAssert.Ram(h.Translate(KernelLinear), Page);
        MmuAssert.Fault(h.Translate(KernelLinear, PageAccess.Execute), 0x11, KernelLinear);
        MmuAssert.Fault(h.Translate(UserLinear, PageAccess.User | PageAccess.Execute), 0x15, UserLinear);
        MmuAssert.Ram(h.Translate(UserLinear + 0x1000, PageAccess.User | PageAccess.Execute), Page);

        // XD in an upper level covers everything below it.
        h.Tables.Update(h.Tables.EntryAddressOf(UserLinear, 4), set: NX);
        h.Mmu.Reset();
        MmuAssert.Fault(h.Translate(UserLinear + 0x1000, PageAccess.User | PageAccess.Execute), 0x15, UserLinear + 0x1000);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void XdBitIsReservedWithoutEferNxe(MmuMode mode)
    {
        using var h = new MmuHarness(mode);
        h.Tables.Map(KernelLinear, Page, P | RW | NX);
        h.EnablePaging(nxe: false);
        MmuAssert.Fault(h.Translate(KernelLinear), 0x9, KernelLinear);
        MmuAssert.Fault(h.Translate(KernelLinear, PageAccess.Execute), 0x9, KernelLinear); // no I/D: neither NXE nor SMEP
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void SmepRefusesSupervisorFetchesFromUserPages(MmuMode mode)
    {
        using var h = new MmuHarness(mode);
        h.Tables.Map(UserLinear, Page, P | RW | US);
        h.EnablePaging(cr4: MmuHarness.Cr4Smep);
        MmuAssert.Fault(h.Translate(UserLinear, PageAccess.Execute), 0x11, UserLinear);
        MmuAssert.Ram(h.Translate(UserLinear), Page); // SMEP is about fetches only
        MmuAssert.Ram(h.Translate(UserLinear, PageAccess.User | PageAccess.Execute), Page);

        Assert.True(h.Mmu.OnCr4Write(h.Cr4 & ~MmuHarness.Cr4Smep));
        MmuAssert.Ram(h.Translate(UserLinear, PageAccess.Execute), Page);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void SmapRefusesSupervisorDataAccessesToUserPagesUnlessAcIsSet(MmuMode mode)
    {
        using var h = new MmuHarness(mode);
        h.Tables.Map(UserLinear, Page, P | RW | US | D);
        h.EnablePaging(cr4: MmuHarness.Cr4Smap);

        MmuAssert.Fault(h.Translate(UserLinear), 0x1, UserLinear);
        MmuAssert.Fault(h.Translate(UserLinear, PageAccess.Write), 0x3, UserLinear);
        MmuAssert.Ram(h.Translate(UserLinear, PageAccess.AlignmentCheck), Page);
        MmuAssert.Ram(h.Translate(UserLinear, PageAccess.Write | PageAccess.AlignmentCheck), Page);

        // After an AC=1 access filled the TLB, an AC=0 access must still fault.
        MmuAssert.Fault(h.Translate(UserLinear + 4), 0x1, UserLinear + 4);

        // Implicit supervisor accesses ignore AC; user accesses and fetches are not SMAP's business.
        MmuAssert.Fault(h.Translate(UserLinear, PageAccess.Implicit | PageAccess.AlignmentCheck), 0x1, UserLinear);
        MmuAssert.Fault(h.Translate(UserLinear, PageAccess.User | PageAccess.Implicit | PageAccess.AlignmentCheck), 0x1, UserLinear);
        MmuAssert.Ram(h.Translate(UserLinear, PageAccess.User), Page);
        MmuAssert.Ram(h.Translate(UserLinear, PageAccess.Execute), Page);

        Assert.True(h.Mmu.OnCr4Write(h.Cr4 & ~MmuHarness.Cr4Smap));
        MmuAssert.Ram(h.Translate(UserLinear), Page);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void ReservedBitsFaultWithRsvd(MmuMode mode)
    {
        using var h = new MmuHarness(mode); // MAXPHYADDR 40
        ulong pte = h.Tables.Map(UserLinear, Page, P | RW | US);
        ulong pml4e = h.Tables.EntryAddressOf(KernelLinear, 4);
        h.Tables.Map(KernelLinear, Page, P | RW);
        h.Tables.Update(pte, set: 1UL << 40);
        h.Tables.Update(pml4e, set: PS);
        h.Tables.Map(0x4000_0000, 0x20_0000 | (1UL << 13), P | RW, pageSize: 2 << 20);
        h.Tables.Map(0x80_0000_0000, 1UL << 13, P | RW, pageSize: 1 << 30);
        h.EnablePaging();

        MmuAssert.Fault(h.Translate(UserLinear), 0x9, UserLinear);
        MmuAssert.Fault(h.Translate(UserLinear, PageAccess.User | PageAccess.Write), 0xF, UserLinear);
        MmuAssert.Fault(h.Translate(UserLinear, PageAccess.User | PageAccess.Execute), 0x1D, UserLinear);
        MmuAssert.Fault(h.Translate(KernelLinear), 0x9, KernelLinear);
        MmuAssert.Fault(h.Translate(0x4000_0000), 0x9, 0x4000_0000);
        MmuAssert.Fault(h.Translate(0x80_0000_0000), 0x9, 0x80_0000_0000);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void BitsAboveMaxPhysAddrInIgnoredRangeDoNotFault(MmuMode mode)
    {
        using var h = new MmuHarness(mode);
        ulong pte = h.Tables.Map(UserLinear, Page, P | RW | US);
        h.Tables.Update(pte, set: 1UL << 52 | 1UL << 62); // 4-level: bits 62:52 are ignored
        h.EnablePaging();
        MmuAssert.Ram(h.Translate(UserLinear), Page);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void PageTableOutsideRamReadsAsAllOnesAndFaultsWithRsvd(MmuMode mode)
    {
        using var h = new MmuHarness(mode);
        h.Tables.Map(UserLinear, Page, P | RW | US);
        ulong pml4e = h.Tables.EntryAddressOf(UserLinear, 4);
        h.Tables.Write(pml4e, 0xF000_0000 | P | RW | US);          // the MMIO hole
        h.Tables.Write(h.Tables.EntryAddressOf(KernelLinear, 4), 0xFF_FFFF_F000 | P | RW); // beyond all memory
        h.EnablePaging();
        MmuAssert.Fault(h.Translate(UserLinear), 0x9, UserLinear);
        MmuAssert.Fault(h.Translate(KernelLinear, PageAccess.Write), 0xB, KernelLinear);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void FiveLevelPagingIsRefused(MmuMode mode)
    {
        using var h = new MmuHarness(mode);
        h.Tables.Map(UserLinear, Page, P | RW | US);
        h.EnablePaging();
        Assert.False(h.Mmu.OnCr4Write(h.Cr4 | PageWalker.Cr4La57));
        MmuAssert.Ram(h.Translate(UserLinear), Page); // state unchanged
    }
}
