using SharpVisor.Machine;
using SharpVisor.Memory;

namespace SharpVisor.Boot.Tests;

/// <summary>
/// The page tables, GDT and registers vCPU 0 starts with, checked by walking and decoding what
/// is in guest memory with the SDM's bit layouts (written out again here, not borrowed from the loader).
/// </summary>
public sealed class EntryStateTests : IDisposable
{
    private readonly TempFiles _files = new();
    private readonly GuestMemory _memory = GuestMemory.CreateRam(64UL << 20);

    public void Dispose()
    {
        _memory.Dispose();
        _files.Dispose();
    }

    [Theory]
    [InlineData(0x0UL)]
    [InlineData(0x7000UL)]
    [InlineData(0x100_0200UL)]
    [InlineData(0x3FF_FFFFUL)]
    [InlineData(0xBFFF_F123UL)]
    [InlineData(0xFEE0_0000UL)]
    [InlineData(0xFFFF_FFFFUL)]
    public void PageTablesIdentityMapTheFirstFourGiBWithTwoMiBPages(ulong address)
    {
        BootResult result = LoadLinux();

        (ulong physical, ulong pde) = Walk(result.State.Cr3, address);

        Assert.Equal(address, physical);
        Assert.Equal(0x83UL, pde & 0x83); // present, writable, PS
        Assert.Equal(0UL, pde & 0x4); // supervisor only
    }

    [Fact]
    public void NothingAboveFourGiBIsMapped()
    {
        BootResult result = LoadLinux();

        ulong pml4e = _memory.Read<ulong>(result.State.Cr3);
        ulong pdpte = _memory.Read<ulong>((pml4e & AddressMask) + 4 * 8);
        Assert.Equal(0UL, pdpte & 1);
        Assert.Equal(0UL, _memory.Read<ulong>(result.State.Cr3 + 8) & 1);
    }

    [Fact]
    public void LongModeRegisters()
    {
        BootResult result = LoadLinux();
        VcpuState s = result.State;

        Assert.Equal(BootLayout.Pml4Address, s.Cr3);
        Assert.True((s.Cr0 & 0x8000_0001) == 0x8000_0001, "CR0.PE and CR0.PG");
        Assert.Equal(1UL << 5, s.Cr4 & (1UL << 5)); // PAE
        Assert.Equal((1UL << 8) | (1UL << 10), s.Efer & ((1UL << 8) | (1UL << 10))); // LME, LMA
        Assert.Equal(0UL, s.Rflags & (1UL << 9)); // IF = 0
        Assert.Equal(0x100_0200UL, s.Rip);
        Assert.Equal(BootLayout.ZeroPageAddress, s.Rsi);
        Assert.Equal(0x10, s.Cs.Selector);
        Assert.True(s.Cs.Long && !s.Cs.DefaultBig);
        Assert.All(new[] { s.Ds, s.Es, s.Ss }, seg => Assert.Equal(0x18, seg.Selector));
    }

    [Fact]
    public void LongModeSegmentsMatchTheGdtInMemory()
    {
        VcpuState s = LoadLinux().State;

        Assert.Equal(BootLayout.GdtAddress, s.Gdt.Base);
        AssertMatchesGdt(s, s.Cs);
        AssertMatchesGdt(s, s.Ds);
        AssertMatchesGdt(s, s.Ss);
        AssertMatchesGdt(s, s.Tr);

        Descriptor cs = ReadDescriptor(s, 0x10);
        Assert.True(cs.Present && cs.CodeOrData && cs.Long && !cs.DefaultBig && cs.Type == 0xB && cs.Dpl == 0);
        Assert.Equal(0UL, cs.Base);
        Assert.Equal(0xFFFF_FFFFu, cs.Limit);
        Descriptor ds = ReadDescriptor(s, 0x18);
        Assert.True(ds.Present && ds.CodeOrData && ds.Type == 0x3 && ds.DefaultBig);
        Assert.Equal(0xFFFF_FFFFu, ds.Limit);

        // Long-mode TSS descriptors are 16 bytes; the upper half holds base 63:32.
        Assert.Equal(0UL, _memory.Read<ulong>(s.Gdt.Base + 0x28));
        Descriptor tss = ReadDescriptor(s, 0x20);
        Assert.True(tss.Present && !tss.CodeOrData && tss.Type == 0xB);
    }

    [Fact]
    public void ProtectedModeSegmentsMatchTheGdtInMemory()
    {
        byte[] image = TestImages.AoutKludge();
        string kernel = _files.Write("mb", image);
        VcpuState s = BootLoader.Load(_memory, new BootRequest(kernel)).State;

        AssertMatchesGdt(s, s.Cs);
        AssertMatchesGdt(s, s.Ds);
        AssertMatchesGdt(s, s.Es);
        AssertMatchesGdt(s, s.Fs);
        AssertMatchesGdt(s, s.Gs);
        AssertMatchesGdt(s, s.Ss);
        AssertMatchesGdt(s, s.Tr);
        Descriptor cs = ReadDescriptor(s, 0x10);
        Assert.True(cs.DefaultBig && !cs.Long && cs.Type == 0xB);
        Assert.Equal(0xFFFF_FFFFu, cs.Limit);

        Assert.Equal(1UL, s.Cr0 & 1);
        Assert.Equal(0UL, s.Cr0 & 0x8000_0000); // paging off
        Assert.Equal(0UL, s.Efer & (1UL << 10));
        Assert.Equal(0UL, s.Rflags & (1UL << 9));
        Assert.Equal(0x2BAD_B002UL, s.Rax);
        Assert.Equal(BootLayout.MultibootInfoAddress, s.Rbx);
    }

    private const ulong AddressMask = 0x000F_FFFF_FFFF_F000;

    private BootResult LoadLinux()
    {
        string kernel = _files.Write("bzImage", new BzImageSpec().Build());
        return BootLoader.Load(_memory, new BootRequest(kernel));
    }

    /// <summary>A 4-level walk that expects a 2 MiB page at the PD level.</summary>
    private (ulong Physical, ulong Pde) Walk(ulong cr3, ulong address)
    {
        ulong pml4e = _memory.Read<ulong>((cr3 & AddressMask) + ((address >> 39) & 511) * 8);
        Assert.Equal(1UL, pml4e & 1);
        ulong pdpte = _memory.Read<ulong>((pml4e & AddressMask) + ((address >> 30) & 511) * 8);
        Assert.Equal(1UL, pdpte & 1);
        Assert.Equal(0UL, pdpte & 0x80);
        ulong pde = _memory.Read<ulong>((pdpte & AddressMask) + ((address >> 21) & 511) * 8);
        Assert.Equal(1UL, pde & 1);
        Assert.Equal(0x80UL, pde & 0x80);
        return ((pde & 0x000F_FFFF_FFE0_0000) | (address & 0x1F_FFFF), pde);
    }

    private readonly record struct Descriptor(ulong Base, uint Limit, byte Type, bool CodeOrData, byte Dpl, bool Present, bool Long, bool DefaultBig, bool Granularity);

    private Descriptor ReadDescriptor(VcpuState s, ushort selector)
    {
        Assert.True(selector + 7u <= s.Gdt.Limit, $"selector 0x{selector:x} is beyond the GDT limit");
        ulong d = _memory.Read<ulong>(s.Gdt.Base + selector);
        uint limit = (uint)(d & 0xFFFF) | (uint)((d >> 48) & 0xF) << 16;
        bool g = (d & (1UL << 55)) != 0;
        return new Descriptor(
            Base: ((d >> 16) & 0xFFFFFF) | ((d >> 56) << 24),
            Limit: g ? (limit << 12) | 0xFFF : limit,
            Type: (byte)((d >> 40) & 0xF),
            CodeOrData: (d & (1UL << 44)) != 0,
            Dpl: (byte)((d >> 45) & 3),
            Present: (d & (1UL << 47)) != 0,
            Long: (d & (1UL << 53)) != 0,
            DefaultBig: (d & (1UL << 54)) != 0,
            Granularity: g);
    }

    private void AssertMatchesGdt(VcpuState s, SegmentRegister segment)
    {
        Descriptor d = ReadDescriptor(s, segment.Selector);
        Assert.Equal(d.Base, segment.Base);
        Assert.Equal(d.Limit, segment.Limit);
        Assert.Equal(d.Type, segment.Type);
        Assert.Equal(d.CodeOrData, segment.CodeOrData);
        Assert.Equal(d.Dpl, segment.Dpl);
        Assert.Equal(d.Present, segment.Present);
        Assert.Equal(d.Long, segment.Long);
        Assert.Equal(d.DefaultBig, segment.DefaultBig);
        Assert.Equal(d.Granularity, segment.Granularity);
    }
}
