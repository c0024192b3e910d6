using SharpVisor.Emulator.Mmu;
using SharpVisor.Memory;
using static SharpVisor.Emulator.Tests.Mmu.PageTables;

namespace SharpVisor.Emulator.Tests.Mmu;

// The CPU core has its own IMmu and TlbEntry in SharpVisor.Emulator; these tests mean the MMU's.
using IMmu = SharpVisor.Emulator.Mmu.IMmu;
using TlbEntry = SharpVisor.Emulator.Mmu.TlbEntry;

/// <summary>Non-RAM guest-physical addresses translate to MMIO results, in both MMU modes.</summary>
public class MmioTests
{
    private const ulong LapicLinear = 0xFFFF_FFFF_FF5F_C000;

    public static TheoryData<MmuMode> Modes => MmuHarness.Modes;

    [Theory]
    [MemberData(nameof(Modes))]
    public void LocalApicPageIsMmioAndNeverCached(MmuMode mode)
    {
        using var h = new MmuHarness(mode);
        h.Tables.Map(LapicLinear, 0xFEE0_0000, P | RW | NX);
        h.Tables.Map(0x1000, 0xFEC0_0000, P | RW);
        h.Tables.Map(0x2000, 0xE000_0000, P | RW);
        h.EnablePaging();

        MmuAssert.Mmio(h.Translate(LapicLinear + 0xB0, PageAccess.Write), 0xFEE0_00B0);
        MmuAssert.Mmio(h.Translate(LapicLinear + 0x30), 0xFEE0_0030);
        Assert.False(h.Mmu.Tlb.TryGetHostAddress(LapicLinear, PageAccess.Read, out _));
        MmuAssert.Mmio(h.Translate(0x1010), 0xFEC0_0010);
        MmuAssert.Mmio(h.Translate(0x2FFC), 0xE000_0FFC); // a PCI BAR
        Assert.Equal(4, h.Mmu.Counters.MmioTranslations);

        // Page-level rights still come first.
        MmuAssert.Fault(h.Translate(LapicLinear, PageAccess.User), 0x5, LapicLinear);
        MmuAssert.Fault(h.Translate(LapicLinear, PageAccess.Execute), 0x11, LapicLinear);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void WritesToReadOnlyRegionsGoToMmio(MmuMode mode)
    {
        var memory = new GuestMemory();
        memory.AddRegion(0, 32 << 20);
        memory.AddRegion(0xFFF0_0000, 1 << 20, readOnly: true, name: "bios");
        using var h = new MmuHarness(mode, memory: memory);
        h.Tables.Map(0x1000, 0xFFFF_0000, P | RW | D);
        h.EnablePaging();

        MmuAssert.Ram(h.Translate(0x1FF0), 0xFFFF_0FF0);
        MmuAssert.Mmio(h.Translate(0x1FF0, PageAccess.Write), 0xFFFF_0FF0);
        Assert.False(h.Mmu.Tlb.TryGetHostAddress(0x1000, PageAccess.Write, out _));
    }
}
