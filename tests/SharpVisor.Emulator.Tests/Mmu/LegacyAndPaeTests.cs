using SharpVisor.Emulator.Mmu;
using SharpVisor.Machine;
using static SharpVisor.Emulator.Tests.Mmu.PageTables;

namespace SharpVisor.Emulator.Tests.Mmu;

// The CPU core has its own IMmu and TlbEntry in SharpVisor.Emulator; these tests mean the MMU's.
using IMmu = SharpVisor.Emulator.Mmu.IMmu;
using TlbEntry = SharpVisor.Emulator.Mmu.TlbEntry;

/// <summary>32-bit paging, PAE paging and paging off, in both MMU modes.</summary>
public class LegacyAndPaeTests
{
    private const ulong Page = 0x80_0000;

    public static TheoryData<MmuMode> Modes => MmuHarness.Modes;

    [Theory]
    [MemberData(nameof(Modes))]
    public void LegacyPagingTranslatesAndFaults(MmuMode mode)
    {
        using var h = new MmuHarness(mode, PagingMode.Legacy32);
        h.Tables.Map(0xC000_1000, Page, P | RW);
        h.Tables.Map(0x0804_8000, Page + 0x1000, P | US);
        h.EnablePaging();

        MmuAssert.Ram(h.Translate(0xC000_1ABC, PageAccess.Write), Page + 0xABC);
        MmuAssert.Ram(h.Translate(0x0804_8004, PageAccess.User | PageAccess.Execute), Page + 0x1004);
        MmuAssert.Fault(h.Translate(0xC000_2000), 0x0, 0xC000_2000);
        MmuAssert.Fault(h.Translate(0x0804_8000, PageAccess.User | PageAccess.Write), 0x7, 0x0804_8000);
        MmuAssert.Fault(h.Translate(0x0804_8000, PageAccess.Write), 0x3, 0x0804_8000);

        // Without SMEP, 32-bit paging never reports instruction fetches in the error code.
        MmuAssert.Fault(h.Translate(0xC000_1000, PageAccess.User | PageAccess.Execute), 0x5, 0xC000_1000);
        MmuAssert.Fault(h.Translate(0x1000_0000, PageAccess.User | PageAccess.Execute), 0x4, 0x1000_0000);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void LegacyPagingReportsFetchesUnderSmep(MmuMode mode)
    {
        using var h = new MmuHarness(mode, PagingMode.Legacy32);
        h.Tables.Map(0x0804_8000, Page, P | US);
        h.EnablePaging(cr4: MmuHarness.Cr4Smep);
        MmuAssert.Fault(h.Translate(0x0804_8000, PageAccess.Execute), 0x11, 0x0804_8000);
        MmuAssert.Fault(h.Translate(0x1000_0000, PageAccess.Execute), 0x10, 0x1000_0000);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void PaePagingTranslatesWithNoExecute(MmuMode mode)
    {
        using var h = new MmuHarness(mode, PagingMode.Pae);
        h.Tables.Map(0xC000_1000, Page, P | RW);
        h.Tables.Map(0xC000_2000, Page, P | RW | NX);
        h.Tables.Map(0x0804_8000, Page + 0x1000, P | US);
        h.EnablePaging();

        MmuAssert.Ram(h.Translate(0xC000_1008, PageAccess.Execute), Page + 8);
        MmuAssert.Fault(h.Translate(0xC000_2008, PageAccess.Execute), 0x11, 0xC000_2008);
        MmuAssert.Ram(h.Translate(0x0804_8000, PageAccess.User), Page + 0x1000);
        MmuAssert.Fault(h.Translate(0x4000_0000), 0x0, 0x4000_0000); // PDPTE 1 not present
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void PaeReservesBitsThat4LevelPagingIgnores(MmuMode mode)
    {
        using var h = new MmuHarness(mode, PagingMode.Pae);
        ulong pte = h.Tables.Map(0xC000_1000, Page, P | RW);
        h.Tables.Update(pte, set: 1UL << 52);
        h.EnablePaging();
        MmuAssert.Fault(h.Translate(0xC000_1000, PageAccess.Write), 0xB, 0xC000_1000);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void InvalidPdptesMakeTheCr3LoadFail(MmuMode mode)
    {
        using var h = new MmuHarness(mode, PagingMode.Pae);
        h.Tables.Map(0xC000_1000, Page, P | RW);
        h.EnablePaging();

        PageTables other = h.Tables.NewAddressSpace();
        other.Map(0xC000_1000, Page + 0x1000, P | RW);
        other.Update(other.Root + (3 * 8), set: RW); // R/W is reserved in a PDPTE
        Assert.False(h.Mmu.OnCr3Write(other.Root));
        MmuAssert.Ram(h.Translate(0xC000_1000), Page); // the old CR3 and PDPTEs stay

        other.Update(other.Root + (3 * 8), set: 0, clear: RW);
        Assert.True(h.Mmu.OnCr3Write(other.Root));
        MmuAssert.Ram(h.Translate(0xC000_1000), Page + 0x1000);

        // PDPTEs read from outside RAM are all-ones: reserved bits, so #GP too.
        Assert.False(h.Mmu.OnCr3Write(0xF000_0000));
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void PdptesAreRegistersLoadedWithCr3(MmuMode mode)
    {
        using var h = new MmuHarness(mode, PagingMode.Pae);
        h.Tables.Map(0xC000_1000, Page, P | RW);
        h.EnablePaging();

        h.Tables.Update(h.Tables.Root + (3 * 8), set: 0, clear: P);
        h.Mmu.FlushAll();
        MmuAssert.Ram(h.Translate(0xC000_1000), Page);

        Assert.True(h.Mmu.OnCr3Write(h.Tables.Root));
        MmuAssert.Fault(h.Translate(0xC000_1000), 0x0, 0xC000_1000);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void PagingOffIsIdentity(MmuMode mode)
    {
        using var h = new MmuHarness(mode);
        Assert.Equal(PagingMode.Disabled, h.Mmu.PagingMode);
        MmuAssert.Ram(h.Translate(0x12_3456, PageAccess.User | PageAccess.Write), 0x12_3456);
        MmuAssert.Ram(h.Translate(0x12_3456, PageAccess.Execute), 0x12_3456);
        MmuAssert.Mmio(h.Translate(0xFEC0_0000, PageAccess.Write), 0xFEC0_0000);

        // Turning paging on drops the identity translations.
        h.Tables.Map(0x12_3000, Page, P | RW);
        h.EnablePaging();
        MmuAssert.Fault(h.Translate(0x10_0000), 0x0, 0x10_0000);
        MmuAssert.Ram(h.Translate(0x12_3456), Page + 0x456);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void ModeIsChosenByCr0Cr4AndEfer(MmuMode mode)
    {
        using var h = new MmuHarness(mode);
        ulong cr0 = VcpuState.Cr0ProtectionEnable | VcpuState.Cr0Paging;
        Assert.True(h.Mmu.OnCr4Write(VcpuState.Cr4Pae));
        Assert.True(h.Mmu.OnCr3Write(h.Tables.Root));
        Assert.True(h.Mmu.OnEferWrite(VcpuState.EferLongModeEnable));
        Assert.Equal(PagingMode.Disabled, h.Mmu.PagingMode);
        Assert.True(h.Mmu.OnCr0Write(cr0));
        Assert.Equal(PagingMode.FourLevel, h.Mmu.PagingMode);
        Assert.True(h.Mmu.OnCr0Write(VcpuState.Cr0ProtectionEnable));
        Assert.Equal(PagingMode.Disabled, h.Mmu.PagingMode);
    }
}
