using System.Buffers.Binary;
using System.Diagnostics;
using Xunit.Abstractions;

namespace SharpVisor.Xen.Tests;

/// <summary>
/// The hostile blkfront: generated blkif ring contents (plausible and random requests, segment
/// counts and sector ranges, grant references to good, read-only, foreign and garbage entries),
/// hostile ring indices and XenStore handshakes, against blkback in-process. No exception may
/// escape, every response is OKAY, ERROR or EOPNOTSUPP, nothing is written outside the pages the
/// guest granted (canary pages), and a failed device comes back after the front end's reconnect.
/// 10,000 rounds by default (./test.sh); SHARPVISOR_FUZZ_FULL=1 runs 1,000,000.
/// </summary>
public sealed class XenBlockFuzzTests
{
    private const ulong PoolPage = 0x40000;
    private const int PoolPages = 16;
    private const ulong CanaryPage = 0x50000;
    private const int CanaryPages = 16;
    private const uint FirstRef = 9;
    private const uint RefCount = 32;

    private readonly ITestOutputHelper _output;

    public XenBlockFuzzTests(ITestOutputHelper output) => _output = output;

    [Fact]
    public void GeneratedBlkifRingsNeverEscapeTheGuestOrTheHost()
    {
        bool full = Environment.GetEnvironmentVariable("SHARPVISOR_FUZZ_FULL") == "1";
        int rounds = full ? 1_000_000 : 10_000;
        int seed = int.TryParse(Environment.GetEnvironmentVariable("SHARPVISOR_FUZZ_SEED"), out int s) ? s : 11;
        var random = new Random(seed);
        using var front = new FakeBlockFrontend(diskSize: 1 << 20);
        front.Memory.Fill(CanaryPage, CanaryPages * 4096, 0xA5);
        front.Connect();
        var statuses = new Dictionary<short, long>();
        long responses = 0;
        int reconnects = 0;
        var clock = Stopwatch.StartNew();
        for (int round = 0; round < rounds; round++)
        {
            if (random.Next(8) == 0)
            {
                ScrambleGrants(front, random);
            }

            int action = random.Next(100);
            bool structured = action < 80;
            if (structured)
            {
                int count = random.Next(1, 9);
                for (int i = 0; i < count; i++)
                {
                    QueueGenerated(front, random);
                }

                front.Push();
            }
            else if (action < 88)
            {
                // Hostile indices: req_prod anywhere, or the response/event words scribbled.
                front.Memory.Write<uint>(FakeBlockFrontend.RingPage + (uint)(random.Next(4) * 4), Pick(random));
                front.Backend.Process();
            }
            else if (action < 94)
            {
                // Random bytes over a slot, published.
                random.NextBytes(front.Slot((uint)random.Next(XenBlockBackend.RingEntries)));
                front.Memory.Write<uint>(FakeBlockFrontend.RingPage, front.Memory.Read<uint>(FakeBlockFrontend.RingPage) + (uint)random.Next(1, 4));
                front.Backend.Process();
            }
            else
            {
                // A hostile handshake: states, ring-ref, event-channel, protocol, ring-page-order.
                string[] keys = ["state", "ring-ref", "event-channel", "protocol", "ring-page-order"];
                string[] values = ["0", "1", "3", "4", "5", "6", "9", "-1", "x", "8", "4294967295", "99999999999", "x86_32-abi", ""];
                front.WriteFrontend(keys[random.Next(keys.Length)], values[random.Next(values.Length)]);
                front.Backend.Process();
            }

            foreach ((ulong _, byte _, short status) in front.TakeResponses())
            {
                responses++;
                if (structured)
                {
                    Assert.Contains(status, new short[] { 0, -1, -2 });
                    statuses[status] = statuses.GetValueOrDefault(status) + 1;
                }
            }

            if (front.Backend.State != XenbusState.Connected || !structured)
            {
                // The front end starts over, as blkfront does after a failed or closed device.
                front.WriteFrontend("state", "6");
                front.Backend.Process();
                front.WriteFrontend("state", "1");
                front.Backend.Process();
                front.WriteFrontend("ring-page-order", "0");
                front.Connect();
                Assert.Equal(XenbusState.Connected, front.Backend.State);
                reconnects++;
            }
        }

        Assert.True(front.Memory.GetSpan(CanaryPage, CanaryPages * 4096).IndexOfAnyExcept((byte)0xA5) < 0, "blkback wrote outside the granted pages");
        Assert.Equal(0, front.Backend.Counters["internal-errors"]);   // no guest address went unchecked to the memory's own bounds check
        Assert.Equal(1 << 20, front.Image.Bytes.Length);
        Assert.True(statuses.GetValueOrDefault((short)0) > 0 && statuses.GetValueOrDefault((short)-1) > 0, "the generator reached both outcomes");
        _output.WriteLine($"seed {seed}: {rounds} rounds in {clock.Elapsed.TotalSeconds:0.0} s, {responses} responses " +
            $"({string.Join(", ", statuses.OrderBy(p => p.Key).Select(p => $"{p.Key}: {p.Value}"))}), {reconnects} reconnects, " +
            $"{front.Backend.Counters["failures"]} failures, {front.Grants.Counters["grant-refusals"]} grant refusals");
    }

    /// <summary>Grant entries FirstRef.. over the pool: writable, read-only, for another domain, revoked, or naming frames outside RAM.</summary>
    private static void ScrambleGrants(FakeBlockFrontend front, Random random)
    {
        for (uint i = 0; i < RefCount; i++)
        {
            ulong entry = FakeBlockFrontend.GrantFrame + ((FirstRef + i) * 8);
            uint frame = random.Next(10) switch
            {
                0 => (uint)random.Next(),                       // garbage, mostly outside RAM
                1 => 0x400 + (uint)random.Next(0x1000),         // just past RAM (4 MiB)
                _ => (uint)(PoolPage >> 12) + (uint)random.Next(PoolPages),
            };
            ushort flags = random.Next(6) switch
            {
                0 => 0,
                1 => (ushort)(GrantTable.PermitAccess | GrantTable.ReadOnly),
                2 => (ushort)random.Next(0x10000),
                _ => GrantTable.PermitAccess,
            };
            ushort grantee = random.Next(10) == 0 ? (ushort)random.Next(1, 8) : (ushort)0;
            front.Memory.Write<uint>(entry + 4, frame);
            front.Memory.Write<uint>(entry, (uint)(grantee << 16) | flags);
        }
    }

    private static void QueueGenerated(FakeBlockFrontend front, Random random)
    {
        byte[] ops = [XenBlockBackend.OpRead, XenBlockBackend.OpWrite, XenBlockBackend.OpRead, XenBlockBackend.OpWrite, XenBlockBackend.OpFlushDiskCache, XenBlockBackend.OpDiscard, XenBlockBackend.OpWriteBarrier, XenBlockBackend.OpIndirect];
        byte op = random.Next(10) == 0 ? (byte)random.Next(256) : ops[random.Next(ops.Length)];
        ulong sector = random.Next(6) switch
        {
            0 => (ulong)random.NextInt64(),
            1 => 2048 - (ulong)random.Next(1, 90),   // near the end of the 1 MiB disk
            2 => ulong.MaxValue - (ulong)random.Next(16),
            _ => (ulong)random.Next(2048),
        };
        if (op == XenBlockBackend.OpDiscard)
        {
            front.QueueDiscard((ulong)random.NextInt64(), sector, random.Next(3) == 0 ? (ulong)random.NextInt64() : (ulong)random.Next(64));
            return;
        }

        int segments = random.Next(8) == 0 ? random.Next(16) : random.Next(1, XenBlockBackend.MaxSegments + 1);
        var list = new (uint Gref, byte First, byte Last)[Math.Min(segments, XenBlockBackend.MaxSegments)];
        for (int i = 0; i < list.Length; i++)
        {
            uint gref = random.Next(12) == 0 ? (uint)random.Next() : FirstRef + (uint)random.Next((int)RefCount);
            byte first = (byte)random.Next(random.Next(10) == 0 ? 256 : 9);
            byte last = (byte)(random.Next(10) == 0 ? random.Next(256) : Math.Min(7, first + random.Next(8)));
            list[i] = (gref, first, last);
        }

        front.Queue(op, (ulong)random.NextInt64(), sector, list);
        if (segments > XenBlockBackend.MaxSegments)
        {
            // Claim more segments than the request can hold.
            front.Slot(front.PendingProducer - 1)[1] = (byte)segments;
        }

        BinaryPrimitives.WriteUInt16LittleEndian(front.Slot(front.PendingProducer - 1)[2..], (ushort)random.Next(0x10000));   // handle
    }

    private static uint Pick(Random random) => random.Next(4) switch
    {
        0 => (uint)random.Next(),
        1 => uint.MaxValue - (uint)random.Next(64),
        2 => (uint)random.Next(64),
        _ => (uint)random.Next(1000),
    };
}
