using System.Diagnostics;
using SharpVisor.Memory;

namespace SharpVisor.Xen.Tests;

/// <summary>
/// The hostile mapper: generated GNTTABOP_map_grant_ref / unmap_grant_ref batches from domain 2
/// against domain 1's grants (and its own), through the in-process link, while both guests
/// scribble — the mapper on the pages it maps, the granter on its grant entries. Every call
/// answers 0 or a Xen errno, every operation a GNTST status; a page granted only read-only and
/// the pages never granted keep their bytes; once everything is unmapped no pin is left and the
/// maptrack is empty. 10,000 operations by default; SHARPVISOR_FUZZ_FULL=1 runs 1,000,000.
/// </summary>
public sealed partial class XenFuzzTests
{
    private const ushort Granter = 1;
    private const ushort Mapper = 2;
    private const ulong FuzzScratch = 0x10000;
    private const ulong FuzzGrantFrame = 0x11000;
    private const ulong FuzzSharedInfo = 0x12000;
    private const ulong WritablePages = 0x100000;   // 16 pages A grants writable
    private const ulong ReadOnlyPages = 0x110000;   // 16 pages A grants read-only only
    private const ulong CanaryPages = 0x120000;     // 16 pages A never grants
    private const ulong Targets = 0x200000;         // 64 pages of B's RAM to map at
    private const int RefCount = 48;

    private static readonly HashSet<short> s_grantStatuses = [0, -1, -2, -3, -4, -7, -9];

    [Fact]
    public void GeneratedGrantMapsAndUnmapsNeverEscape()
    {
        bool full = Environment.GetEnvironmentVariable("SHARPVISOR_FUZZ_FULL") == "1";
        int operations = full ? 1_000_000 : 10_000;
        int seed = int.TryParse(Environment.GetEnvironmentVariable("SHARPVISOR_FUZZ_SEED"), out int s) ? s : 11;
        var random = new Random(seed);
        using GuestMemory memoryA = GuestMemory.CreateRam(4 << 20);
        using GuestMemory memoryB = GuestMemory.CreateRam(4 << 20);
        using var a = new XenDomain(memoryA, new XenDomainOptions { DomainId = Granter, VcpuCount = 1 });
        using var b = new XenDomain(memoryB, new XenDomainOptions { DomainId = Mapper, VcpuCount = 1 });
        a.Connect(new FakeHypervisorHost());
        b.Connect(new FakeHypervisorHost());
        var domains = new Dictionary<ushort, (XenDomain, GrantTable)> { [Granter] = (a, new GrantTable(a)), [Mapper] = (b, new GrantTable(b)) };
        var linkOfB = new InProcessInterdomainLink(domains, Mapper);
        b.AttachInterdomainLink(linkOfB);
        b.AttachGrantMapLink(linkOfB);
        var cpuA = new FakeHypercallContext(memoryA);
        var cpuB = new FakeHypercallContext(memoryB);
        SetUpGrantTable(a, memoryA, cpuA);
        SetUpGrantTable(b, memoryB, cpuB);
        random.NextBytes(memoryA.GetSpan(WritablePages, 0x30000));
        byte[] readOnlyBytes = memoryA.GetSpan(ReadOnlyPages, 0x20000).ToArray();   // the read-only pages and the canaries

        var live = new List<(uint Handle, ulong Address)>();
        var statuses = new Dictionary<short, int>();
        var results = new Dictionary<long, int>();
        var stopwatch = Stopwatch.StartNew();
        for (int done = 0; done < operations;)
        {
            // The granter rewrites a few entries: read-only pages stay read-only grants.
            for (int i = random.Next(3); i > 0; i--)
            {
                WriteEntry(memoryA, (uint)random.Next(RefCount), random);
            }

            WriteEntry(memoryB, (uint)random.Next(RefCount), random);

            bool map = random.Next(5) < 3;
            int count = random.Next(200) == 0 ? XenDomain.MaxMapBatch + 1 : random.Next(100) == 0 ? 1 + random.Next(100) : 1 + random.Next(4);
            int size = map ? 32 : 24;
            ulong args = random.Next(50) == 0 ? (ulong)random.NextInt64() : FuzzScratch + 0x100;
            int written = Math.Min(count, 0xE00 / size);
            for (int i = 0; i < written; i++)
            {
                ulong op = FuzzScratch + 0x100 + (ulong)(i * size);
                random.NextBytes(memoryB.GetSpan(op, size));
                if (map)
                {
                    memoryB.Write(op, TargetAddress(random, live));
                    memoryB.Write(op + 8, random.Next(6) switch { 0 => 2u, 1 => 6u, 2 => 2u, 3 => (uint)random.Next(32), _ => 6u });
                    memoryB.Write(op + 12, random.Next(10) switch { 0 => 5000u, 1 => (uint)random.Next(), _ => (uint)random.Next(RefCount) });
                    memoryB.Write(op + 16, random.Next(8) switch { 0 => Mapper, 1 => (ushort)0, 2 => (ushort)9, 3 => XenDomain.DomidSelf, 4 => (ushort)random.Next(), _ => Granter });
                }
                else
                {
                    (uint Handle, ulong Address) target = live.Count > 0 ? live[random.Next(live.Count)] : (0, Targets);
                    memoryB.Write(op, random.Next(8) == 0 ? TargetAddress(random, live) : target.Address);
                    memoryB.Write(op + 16, random.Next(6) switch { 0 => (uint)random.Next(), 1 => (uint)random.Next(64), _ => target.Handle });
                }
            }

            long result = cpuB.Call(b, HypercallOp.GrantTableOp, map ? 0UL : 1UL, args, (ulong)count);
            results[result] = results.GetValueOrDefault(result) + 1;
            Assert.True(result is 0 or -14 or -22, $"operation {done}: grant_table_op {(map ? "map" : "unmap")} x{count} answered {result}");
            if (result == 0)
            {
                for (int i = 0; i < count; i++)
                {
                    ulong op = args + (ulong)(i * size);
                    short status = memoryB.Read<short>(op + (map ? 18UL : 20UL));
                    Assert.True(s_grantStatuses.Contains(status), $"operation {done}: status {status}");
                    statuses[status] = statuses.GetValueOrDefault(status) + 1;
                    if (status == 0 && map)
                    {
                        live.Add((memoryB.Read<uint>(op + 20), memoryB.Read<ulong>(op) & ~0xFFFUL));
                    }
                    else if (status == 0)
                    {
                        uint handle = memoryB.Read<uint>(op + 16);
                        Assert.Equal(1, live.RemoveAll(m => m.Handle == handle));
                    }
                }

                done += count;
            }
            else
            {
                done++;
            }

            // The mapper's guest writes into a page it maps (or its own page).
            if (live.Count > 0 && random.Next(2) == 0)
            {
                random.NextBytes(memoryB.GetSpan(live[random.Next(live.Count)].Address + (ulong)random.Next(4000), random.Next(96)));
            }

            Assert.Equal(live.Count, b.GrantMapCount);
        }

        foreach ((uint handle, ulong address) in live)
        {
            memoryB.Write(FuzzScratch + 0x100, address);
            memoryB.Write(FuzzScratch + 0x110, handle);
            Assert.Equal(0, cpuB.Call(b, HypercallOp.GrantTableOp, 1, FuzzScratch + 0x100, 1));
            Assert.Equal(0, memoryB.Read<short>(FuzzScratch + 0x114));
        }

        Assert.Equal(0, b.GrantMapCount);
        Assert.Equal(0, a.GrantPins.Count);
        Assert.Equal(0, b.GrantPins.Count);
        Assert.True(readOnlyBytes.AsSpan().SequenceEqual(memoryA.GetSpan(ReadOnlyPages, 0x20000)), "a read-only grant or a canary page was written");
        Assert.Equal(0, b.Counters["hypercall-memory-faults"]);
        _output.WriteLine($"{operations} map/unmap operations in {stopwatch.Elapsed.TotalSeconds:0.0} s (seed {seed}); calls: " +
            string.Join(", ", results.OrderBy(r => r.Key).Select(r => $"{r.Key}: {r.Value}")) + "; statuses: " +
            string.Join(", ", statuses.OrderBy(r => r.Key).Select(r => $"{r.Key}: {r.Value}")) +
            $"; maps foreign {b.Counters["grant-maps-foreign"]}, served {a.Counters["interdomain-grant-maps"]}, refused by the granter {a.Counters["interdomain-grant-maps-refused"]}");
    }

    private static void SetUpGrantTable(XenDomain xen, GuestMemory memory, FakeHypercallContext cpu)
    {
        memory.Write<ushort>(FuzzScratch, XenDomain.DomidSelf);
        memory.Write<uint>(FuzzScratch + 4, 0);   // XENMAPSPACE_shared_info
        memory.Write<ulong>(FuzzScratch + 8, 0);
        memory.Write<ulong>(FuzzScratch + 16, FuzzSharedInfo >> 12);
        Assert.Equal(0, cpu.Call(xen, HypercallOp.MemoryOp, 7, FuzzScratch));
        memory.Write<uint>(FuzzScratch + 4, 1);   // XENMAPSPACE_grant_table
        memory.Write<ulong>(FuzzScratch + 16, FuzzGrantFrame >> 12);
        Assert.Equal(0, cpu.Call(xen, HypercallOp.MemoryOp, 7, FuzzScratch));
    }

    /// <summary>A grant entry: refs 16..31 always name a read-only page read-only; the others a writable page, a bad frame or nothing.</summary>
    private static void WriteEntry(GuestMemory memory, uint reference, Random random)
    {
        ulong entry = FuzzGrantFrame + (reference * 8);
        bool readOnlyPage = reference is >= 16 and < 32;
        ulong page = readOnlyPage ? ReadOnlyPages + ((reference - 16) * 4096UL)
            : random.Next(8) == 0 ? 0xFFFF_F000 : random.Next(8) == 0 ? FuzzSharedInfo : WritablePages + ((ulong)random.Next(16) * 4096);
        ushort flags = (ushort)(random.Next(8) == 0 ? random.Next(0x10000) : GrantTable.PermitAccess | (random.Next(2) == 0 ? GrantTable.ReadOnly : 0));
        if (readOnlyPage)
        {
            flags |= GrantTable.ReadOnly;
        }

        ushort grantee = random.Next(6) == 0 ? (ushort)3 : Mapper;   // A's grants and B's own are both for B
        memory.Write<uint>(entry + 4, (uint)(page >> 12));
        memory.Write<ushort>(entry + 2, grantee);
        ref uint header = ref System.Runtime.CompilerServices.Unsafe.As<byte, uint>(ref memory.GetSpan(entry, 4)[0]);
        Interlocked.Exchange(ref header, (header & (uint)(GrantTable.Reading | GrantTable.Writing)) | (uint)(flags & ~(GrantTable.Reading | GrantTable.Writing)) | ((uint)grantee << 16));
    }

    private static ulong TargetAddress(Random random, List<(uint Handle, ulong Address)> live) => random.Next(12) switch
    {
        0 => (ulong)random.NextInt64(),
        1 => FuzzSharedInfo,
        2 => FuzzGrantFrame,
        3 => 0xC000_0000,
        4 => 4UL << 20,
        5 when live.Count > 0 => live[random.Next(live.Count)].Address,
        6 => Targets + ((ulong)random.Next(64) * 4096) + (ulong)random.Next(4096),
        _ => Targets + ((ulong)random.Next(64) * 4096),
    };
}
