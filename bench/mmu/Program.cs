using System.Diagnostics;
using SharpVisor.Bench.Mmu;
using SharpVisor.Emulator.Mmu;

// MMU micro-benchmark: shadow and nested paging side by side on the same 4-level guest
// address spaces, in one run. Prints ns per operation (best of ROUNDS: the machine is shared,
// and the fastest round is the one least disturbed), walks per operation and the ratio nested/shadow.
//
// Usage: dotnet run -c Release --project bench/mmu -- [OPERATIONS (2000000)] [ROUNDS (5)]
int operations = args.Length > 0 ? int.Parse(args[0]) : 2_000_000;
int rounds = args.Length > 1 ? int.Parse(args[1]) : 5;

var scenarios = new (string Name, string What, Func<Setup, int, long> Run)[]
{
    ("tlb-inline", "SoftTlb.TryGetHostAddress hit (the CPU's inline path)", InlineTlbHits),
    ("translate-hit", "IMmu.Translate answered by the TLB", TranslateHits),
    ("tlb-miss", "Translate over 64 MiB of 4 KiB pages (TLB misses)", TlbMisses),
    ("cr3-switch", "two processes: CR3 load, 64 user + 64 kernel pages", ContextSwitches),
    ("pte-store", "guest stores a PTE, invalidates, touches the page", PteStores),
};

Console.WriteLine($"# MMU benchmark: {operations} operations per round, best of {rounds} rounds");
Console.WriteLine($"{"scenario",-14} {"shadow ns/op",13} {"nested ns/op",13} {"nested/shadow",14} {"shadow walks/op",16} {"nested walks/op",16} {"2nd-level/op",13}");
foreach (var (name, what, run) in scenarios)
{
    var results = new Dictionary<MmuMode, (double Ns, MmuCounters Counters)>();
    foreach (MmuMode mode in new[] { MmuMode.Shadow, MmuMode.Nested })
    {
        using var setup = new Setup(mode);
        run(setup, Math.Min(operations, 10_000)); // warm up: JIT, shadow tables, TLB
        var times = new List<double>();
        MmuCounters before = setup.Mmu.Counters.Snapshot();
        long done = 0;
        for (int round = 0; round < rounds; round++)
        {
            long start = Stopwatch.GetTimestamp();
            long ops = run(setup, operations);
            times.Add(Stopwatch.GetElapsedTime(start).TotalNanoseconds / ops);
            done += ops;
        }

        times.Sort();
        MmuCounters delta = Delta(setup.Mmu.Counters, before, done);
        results[mode] = (times[0], delta);
    }

    var shadow = results[MmuMode.Shadow];
    var nested = results[MmuMode.Nested];
    Console.WriteLine(
        $"{name,-14} {shadow.Ns,13:F1} {nested.Ns,13:F1} {nested.Ns / shadow.Ns,14:F2} " +
        $"{shadow.Counters.Walks / 1000.0,16:F3} {nested.Counters.Walks / 1000.0,16:F3} {nested.Counters.NestedWalks / 1000.0,13:F3}   # {what}");
}

// Counters per 1000 operations, so the table can print per-operation rates with 3 decimals.
static MmuCounters Delta(MmuCounters after, MmuCounters before, long operations) => new()
{
    Walks = (after.Walks - before.Walks) * 1000 / operations,
    NestedWalks = (after.NestedWalks - before.NestedWalks) * 1000 / operations,
};

static long InlineTlbHits(Setup s, int operations)
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

static long TranslateHits(Setup s, int operations)
{
    nint sum = 0;
    for (int i = 0; i < operations; i++)
    {
        sum += s.Mmu.Translate(Setup.KernelBase + ((ulong)(i & 255) << 12), PageAccess.Read).HostAddress;
    }

    GC.KeepAlive(sum);
    return operations;
}

static long TlbMisses(Setup s, int operations)
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

static long ContextSwitches(Setup s, int operations)
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

static unsafe long PteStores(Setup s, int operations)
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
