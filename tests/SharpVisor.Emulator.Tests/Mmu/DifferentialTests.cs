using SharpVisor.Emulator.Mmu;
using SharpVisor.Machine;
using SharpVisor.Memory;
using static SharpVisor.Emulator.Tests.Mmu.PageTables;

namespace SharpVisor.Emulator.Tests.Mmu;

// The CPU core has its own IMmu and TlbEntry in SharpVisor.Emulator; these tests mean the MMU's.
using IMmu = SharpVisor.Emulator.Mmu.IMmu;
using TlbEntry = SharpVisor.Emulator.Mmu.TlbEntry;

/// <summary>
/// Shadow and nested paging side by side on the same random workload (translations, page-table
/// stores followed by the INVLPG or flush a guest would issue, CR3 loads, WP/SMAP/SMEP changes):
/// every result, and the accessed/dirty bits left in the tables, must be identical.
/// </summary>
public class DifferentialTests
{
    private const ulong TableArea = 0x10_0000;
    private const ulong TableAlias = 0x7000_0000;
    private const int Regions = 4;
    private const int PagesPerRegion = 12;

    [Theory]
    [InlineData(PagingMode.FourLevel, 1)]
    [InlineData(PagingMode.FourLevel, 2)]
    [InlineData(PagingMode.Pae, 3)]
    [InlineData(PagingMode.Legacy32, 4)]
    public void ShadowAndNestedPagingAgree(PagingMode paging, int seed)
    {
        using var shadow = new MmuHarness(MmuMode.Shadow, paging);
        using var nested = new MmuHarness(MmuMode.Nested, paging);
        MmuHarness[] both = { shadow, nested };
        var random = new Random(seed);
        bool legacy = paging == PagingMode.Legacy32;
        int entrySize = legacy ? 4 : 8;

        var pages = new List<ulong>();
        for (int region = 0; region < Regions; region++)
        {
            for (int i = 0; i < PagesPerRegion; i++)
            {
                pages.Add(0x40_0000 + ((ulong)region << 21) + ((ulong)i << 12));
            }
        }

        foreach (MmuHarness h in both)
        {
            for (ulong i = 0; i < 64; i++)
            {
                h.Tables.Map(TableAlias + (i << 12), TableArea + (i << 12), P | RW);
            }
        }

        var initial = new Random(seed * 7919);
        foreach (ulong page in pages)
        {
            ulong leaf = RandomLeaf(initial, legacy);
            foreach (MmuHarness h in both)
            {
                h.Tables.Map(page, leaf & ~(P | RW | US | NX | G | D) & 0xF_FFFF_F000, leaf & (P | RW | US | NX | G | D));
            }
        }

        ulong cr4 = VcpuState.Cr4Pge;
        foreach (MmuHarness h in both)
        {
            h.EnablePaging(cr4: cr4);
        }

        ulong cr0 = shadow.Cr0;
        cr4 = shadow.Cr4;
        for (int step = 0; step < 3000; step++)
        {
            int op = random.Next(100);
            ulong page = pages[random.Next(pages.Count)];
            if (op < 60)
            {
                ulong linear = page + (ulong)random.Next(4096);
                PageAccess access = RandomAccess(random);
                Translation a = shadow.Translate(linear, access);
                Translation b = nested.Translate(linear, access);
                Assert.True(Same(a, b), $"step {step}: {access} at 0x{linear:x}: shadow {a}, nested {b}");
                CheckHost(shadow, a);
                CheckHost(nested, b);
            }
            else if (op < 85)
            {
                // Rewrite (or age: clear A/D of) a leaf entry through the guest's own mapping, then INVLPG it.
                ulong entry = shadow.Tables.EntryAddressOf(page, 1);
                ulong value = op < 78 ? RandomLeaf(random, legacy) : shadow.Tables.Read(entry) & ~(A | D);
                foreach (MmuHarness h in both)
                {
                    Assert.True(h.Store(TableAlias + (entry - TableArea), value, entrySize).IsRam);
                    h.Mmu.FlushPage(page);
                }
            }
            else if (op < 90)
            {
                // Flip R/W or U/S of a directory entry, then flush everything (as for a range flush).
                ulong entry = shadow.Tables.EntryAddressOf(page, 2);
                ulong value = shadow.Tables.Read(entry) ^ (random.Next(2) == 0 ? RW : US);
                foreach (MmuHarness h in both)
                {
                    Assert.True(h.Store(TableAlias + (entry - TableArea), value, entrySize).IsRam);
                    h.Mmu.FlushAll();
                }
            }
            else if (op < 95)
            {
                foreach (MmuHarness h in both)
                {
                    Assert.True(h.Mmu.OnCr3Write(h.Tables.Root));
                }
            }
            else
            {
                switch (random.Next(3))
                {
                    case 0:
                        cr0 ^= VcpuState.Cr0WriteProtect;
                        Assert.All(both, h => Assert.True(h.Mmu.OnCr0Write(cr0)));
                        break;
                    case 1:
                        cr4 ^= MmuHarness.Cr4Smap;
                        Assert.All(both, h => Assert.True(h.Mmu.OnCr4Write(cr4)));
                        break;
                    default:
                        cr4 ^= MmuHarness.Cr4Smep;
                        Assert.All(both, h => Assert.True(h.Mmu.OnCr4Write(cr4)));
                        break;
                }
            }
        }

        Assert.Equal(shadow.Memory.GetSpan(TableArea, 64 * 4096).ToArray(), nested.Memory.GetSpan(TableArea, 64 * 4096).ToArray());
        Assert.True(shadow.Mmu.Counters.ShadowHits > 0);
        Assert.True(shadow.Mmu.Counters.ShadowInvalidations > 0);
        Assert.True(nested.Mmu.Counters.NestedWalks > nested.Mmu.Counters.Walks * 2);
    }

    private static ulong RandomLeaf(Random random, bool legacy)
    {
        ulong target = random.Next(10) == 0 ? 0xFEE0_0000 : 0x80_0000 + ((ulong)random.Next(256) << 12);
        ulong flags = 0;
        flags |= random.Next(8) != 0 ? P : 0;
        flags |= random.Next(2) == 0 ? RW : 0;
        flags |= random.Next(2) == 0 ? US : 0;
        flags |= random.Next(4) == 0 ? G : 0;
        flags |= random.Next(4) == 0 ? D : 0;
        if (!legacy && random.Next(4) == 0)
        {
            flags |= NX;
        }

        return target | flags;
    }

    private static PageAccess RandomAccess(Random random)
    {
        PageAccess access = random.Next(3) switch
        {
            0 => PageAccess.Read,
            1 => PageAccess.Write,
            _ => PageAccess.Execute,
        };
        if (random.Next(2) == 0)
        {
            access |= PageAccess.User;
        }
        else if (random.Next(3) == 0 && access != PageAccess.Execute)
        {
            access |= PageAccess.AlignmentCheck;
        }

        if (random.Next(20) == 0 && access != PageAccess.Execute)
        {
            access |= PageAccess.Implicit;
        }

        return access;
    }

    private static bool Same(Translation a, Translation b) =>
        a.Status == b.Status && a.PhysicalAddress == b.PhysicalAddress && a.Fault == b.Fault;

    private static void CheckHost(MmuHarness h, Translation t)
    {
        if (t.IsRam)
        {
            MemoryRegion region = h.Memory.FindRegion(t.PhysicalAddress)!;
            Assert.Equal(region.HostAddress + (nint)(t.PhysicalAddress - region.GuestPhysicalAddress), t.HostAddress);
        }
    }
}
