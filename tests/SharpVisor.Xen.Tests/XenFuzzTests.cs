using System.Diagnostics;
using SharpVisor.Memory;
using Xunit.Abstractions;

namespace SharpVisor.Xen.Tests;

/// <summary>
/// The hostile guest: generated hypercalls (random op numbers, sub-commands, pointers into and out
/// of RAM, frame numbers, ports, lengths, random structure contents) and generated XenStore and
/// console ring contents. No exception may escape, every hypercall answers a result or a Xen errno,
/// and guest-virtual accesses are confined to the domain's memory (the fake vCPU checks them).
/// 10,000 hypercalls by default (./test.sh); SHARPVISOR_FUZZ_FULL=1 runs 1,000,000.
/// </summary>
public sealed partial class XenFuzzTests
{
    private static readonly HashSet<long> s_errnos = [0, -1, -2, -3, -5, -7, -9, -11, -12, -13, -14, -16, -17, -19, -22, -28, -34, -38, -62, -95];

    private readonly ITestOutputHelper _output;

    public XenFuzzTests(ITestOutputHelper output) => _output = output;

    [Fact]
    public void GeneratedHypercallsAndRingsNeverEscape()
    {
        bool full = Environment.GetEnvironmentVariable("SHARPVISOR_FUZZ_FULL") == "1";
        int calls = full ? 1_000_000 : 10_000;
        int seed = int.TryParse(Environment.GetEnvironmentVariable("SHARPVISOR_FUZZ_SEED"), out int s) ? s : 11;
        using GuestMemory memory = GuestMemory.CreateRam(8 << 20);
        var host = new FakeHypervisorHost();
        using var xen = new XenDomain(memory, new XenDomainOptions { VcpuCount = 2, MemoryMap = [new XenMemoryMapEntry(0, 8 << 20, 1)] });
        xen.Connect(host);
        var store = new XenStore();
        XenStoreLayout.SeedDomain(store, 1, "fuzz", 8192, 2);
        var connection = new XenStoreConnection(xen, store, 0x7F0000);
        var console = new XenConsoleBackend(xen, 0x7F1000, _ => { });
        var cpus = new[] { new FakeHypercallContext(memory, 0), new FakeHypercallContext(memory, 1) };
        var random = new Random(seed);
        ulong[] interesting = [0, 1, 2, 7, 0x7FF0, 4095, 4096, (8 << 20) - 8, 8 << 20, 0x107FFF, 0xFEE00, ulong.MaxValue, 1UL << 63, 0x7F0000, 0x7F1000];
        int[] ops = [12, 15, 17, 18, 20, 24, 29, 32, 34];
        var results = new Dictionary<long, int>();
        var stopwatch = Stopwatch.StartNew();
        for (int i = 0; i < calls; i++)
        {
            // Noise in a scratch area the pointers aim at, with our own domain id now and then.
            Span<byte> scratch = memory.GetSpan(0x10000, 0x2000);
            random.NextBytes(scratch);
            if (random.Next(2) == 0)
            {
                memory.Write<ushort>(0x10000 + (ulong)(random.Next(0x100) * 8), XenDomain.DomidSelf);
            }

            ulong Next() => random.Next(4) switch
            {
                0 => interesting[random.Next(interesting.Length)],
                1 => (ulong)random.Next(64),
                2 => (ulong)random.NextInt64(),
                _ => 0x10000 + (ulong)random.Next(0x2000),
            };

            int op = random.Next(5) == 0 ? random.Next(64) : ops[random.Next(ops.Length)];
            ulong command = random.Next(8) == 0 ? Next() : (ulong)random.Next(24);
            if (op == 29 && command is 1 or 2 or 4)
            {
                command = 0;   // block/shutdown end the run of a real guest: covered elsewhere
            }

            FakeHypercallContext cpu = cpus[random.Next(2)];
            cpu.Cpl = random.Next(50) == 0 ? 3 : 0;
            cpu.LongMode = random.Next(50) != 0;
            long result = cpu.Call(xen, (HypercallOp)op, command, Next(), Next(), Next(), Next());
            if (!cpu.LongMode)
            {
                result = (int)result;
            }

            Assert.True(result >= 0 || s_errnos.Contains(result), $"call {i}: op {op} cmd {command} answered {result}");
            results[Math.Min(result, 1)] = results.GetValueOrDefault(Math.Min(result, 1)) + 1;

            // Every so often the rings get garbage and the back ends are poked.
            if (i % 16 == 0)
            {
                int offset = random.Next(4096 - 64);
                random.NextBytes(memory.GetSpan(0x7F0000 + (ulong)offset, random.Next(64)));
                connection.Service();
                random.NextBytes(memory.GetSpan(0x7F1000 + (ulong)random.Next(4096 - 64), random.Next(64)));
                console.WriteInput(new byte[random.Next(100)]);
            }
        }

        Assert.Equal(0, host.Control.StopReason is null ? 0 : 1);
        Assert.Equal(0, xen.Counters["hypercall-memory-faults"]);   // every guest address was checked before use: the safety net never caught one
        _output.WriteLine($"{calls} hypercalls in {stopwatch.Elapsed.TotalSeconds:0.0} s (seed {seed}); results: " +
            string.Join(", ", results.OrderBy(r => r.Key).Select(r => $"{(r.Key == 1 ? ">0" : r.Key.ToString(System.Globalization.CultureInfo.InvariantCulture))}: {r.Value}")) +
            $"; xenstore connection {(connection.Failed ? "failed (hostile ring)" : "alive")}, console {(console.Failed ? "failed (hostile ring)" : "alive")}");
    }
}
