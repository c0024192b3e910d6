using SharpVisor.Emulator.Mmu;

namespace SharpVisor.Bench.Mmu;

/// <summary>One measured workload: runs about <c>operations</c> MMU operations and returns how many it ran.</summary>
internal sealed record Scenario(string Name, string What, Func<Setup, int, long> Run)
{
    public static Scenario[] All { get; } =
    {
        new("tlb-inline", "SoftTlb.TryGetHostAddress hit (the CPU's inline path)", InlineTlbHits),
        new("translate-hit", "IMmu.Translate answered by the TLB", TranslateHits),
        new("tlb-miss", "Translate over 64 MiB of 4 KiB pages (TLB misses)", TlbMisses),
        new("cr3-switch", "two processes: CR3 load, 64 user + 64 kernel pages", ContextSwitches),
        new("pte-store", "guest stores a PTE, INVLPG, touches the page", PteStores),
    };

    private static long InlineTlbHits(Setup s, int operations)
    {
        SoftTlb tlb = s.Mmu.Tlb;
        nint sum = 0;
        for (int i = 0; i < operations; i++)
        {
            ulong linear = Setup.KernelBase + ((ulong)(i & 255) << 12) + 8;
            if (!tlb.TryGetHostAddress(linear, PageAccess.Read, out nint host))
            {
                host = s.Mmu.Translate(linear, PageAccess.Read).HostAddress;
            }

            sum += host;
        }

        GC.KeepAlive(sum);
        return operations;
    }

    private static long TranslateHits(Setup s, int operations)
    {
        nint sum = 0;
        for (int i = 0; i < operations; i++)
        {
            sum += s.Mmu.Translate(Setup.KernelBase + ((ulong)(i & 255) << 12), PageAccess.Read).HostAddress;
        }

        GC.KeepAlive(sum);
        return operations;
    }

    private static long TlbMisses(Setup s, int operations)
    {
        nint sum = 0;
        uint x = 12345;
        for (int i = 0; i < operations; i++)
        {
            x = (x * 1664525) + 1013904223;
            ulong page = (x >> 8) % Setup.KernelPages;
            sum += s.Mmu.Translate(Setup.KernelBase + (page << 12), PageAccess.Read).HostAddress;
        }

        GC.KeepAlive(sum);
        return operations;
    }

    private static long ContextSwitches(Setup s, int operations)
    {
        nint sum = 0;
        long done = 0;
        for (int round = 0; done < operations; round++)
        {
            s.Mmu.OnCr3Write(s.Processes[round & 1].Root);
            for (ulong page = 0; page < 64; page++)
            {
                sum += s.Mmu.Translate(Setup.UserBase + (page << 12), PageAccess.User | PageAccess.Write).HostAddress;
                sum += s.Mmu.Translate(Setup.KernelBase + (page << 12), PageAccess.Read).HostAddress;
            }

            done += 128;
        }

        GC.KeepAlive(sum);
        return done;
    }

    private static unsafe long PteStores(Setup s, int operations)
    {
        nint sum = 0;
        for (int i = 0; i < operations; i++)
        {
            ulong page = (ulong)(i & 63);
            ulong linear = Setup.KernelBase + (page << 12);
            ulong pte = s.KernelPtes[page];
            ulong target = Setup.KernelData + ((page ^ (ulong)(i & 1)) << 12);

            // set_pte() through the kernel's mapping of its page tables, then flush_tlb_one().
            Translation store = s.Mmu.Translate(s.TableAlias(pte), PageAccess.Write);
            *(ulong*)store.HostAddress = target | 7;
            if (store.WriteTracked)
            {
                s.Mmu.OnGuestPhysicalWrite(store.PhysicalAddress, 8);
            }

            s.Mmu.FlushPage(linear);
            sum += s.Mmu.Translate(linear, PageAccess.Read).HostAddress;
        }

        GC.KeepAlive(sum);
        return operations;
    }
}
