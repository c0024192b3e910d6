using System.Diagnostics;
using Xunit.Abstractions;

namespace SharpVisor.Xen.Tests;

/// <summary>
/// The hostile netfront: generated tx chains (flags, sizes, offsets, grant references), rx buffer
/// posts, frames from the host, hostile ring indices and handshakes, against netback in-process.
/// No exception may escape, every tx response is OKAY, ERROR or NULL, nothing is written outside
/// the pages the guest granted (canary pages), no frame sent is larger than the guest's request
/// said, and a failed device comes back after the front end's reconnect. 10,000 rounds by default
/// (./test.sh); SHARPVISOR_FUZZ_FULL=1 runs 1,000,000.
/// </summary>
public sealed class XenNetFuzzTests
{
    private const ulong PoolPage = 0x40000;
    private const int PoolPages = 16;
    private const ulong CanaryPage = 0x50000;
    private const int CanaryPages = 16;
    private const uint FirstRef = 9;
    private const uint RefCount = 32;

    private readonly ITestOutputHelper _output;

    public XenNetFuzzTests(ITestOutputHelper output) => _output = output;

    [Fact]
    public void GeneratedNetifRingsNeverEscapeTheGuestOrTheHost()
    {
        bool full = Environment.GetEnvironmentVariable("SHARPVISOR_FUZZ_FULL") == "1";
        int rounds = full ? 1_000_000 : 10_000;
        int seed = int.TryParse(Environment.GetEnvironmentVariable("SHARPVISOR_FUZZ_SEED"), out int s) ? s : 11;
        var random = new Random(seed);
        using var front = new FakeNetFrontend();
        front.Guest.Memory.Fill(CanaryPage, CanaryPages * 4096, 0xA5);
        front.Connect();
        var statuses = new Dictionary<short, long>();
        int reconnects = 0;
        var clock = Stopwatch.StartNew();
        for (int round = 0; round < rounds; round++)
        {
            if (random.Next(8) == 0)
            {
                ScrambleGrants(front.Guest, random);
            }

            int action = random.Next(100);
            bool structured = action < 85;
            if (structured)
            {
                int packets = random.Next(0, 4);
                for (int p = 0; p < packets; p++)
                {
                    QueueChain(front, random);
                }

                int posts = random.Next(0, 6);
                for (int i = 0; i < posts; i++)
                {
                    front.PostRx((ushort)random.Next(0x10000), random.Next(10) == 0 ? (uint)random.Next() : FirstRef + (uint)random.Next((int)RefCount));
                }

                int frames = random.Next(0, 4);
                for (int i = 0; i < frames; i++)
                {
                    var frame = new byte[random.Next(3) == 0 ? random.Next(4000, 9000) : random.Next(14, 1515)];
                    random.NextBytes(frame);
                    front.Backend.Deliver(frame, RandomOffload(random, frame.Length));
                }

                front.Push();
            }
            else if (action < 93)
            {
                ulong ring = random.Next(2) == 0 ? FakeNetFrontend.TxRing : FakeNetFrontend.RxRing;
                front.Guest.Memory.Write<uint>(ring + (uint)(random.Next(4) * 4), random.Next(3) == 0 ? (uint)random.Next() : (uint)random.Next(600));
                front.Backend.Process();
            }
            else
            {
                string[] keys = ["state", "tx-ring-ref", "rx-ring-ref", "event-channel", "request-rx-copy", "feature-sg", "feature-gso-tcpv4", "feature-gso-tcpv6", "feature-no-csum-offload", "feature-ipv6-csum-offload"];
                string[] values = ["0", "1", "3", "4", "5", "6", "7", "8", "-1", "x", "4294967295", ""];
                front.Write(keys[random.Next(keys.Length)], values[random.Next(values.Length)]);
                front.Backend.Process();
            }

            foreach ((ushort _, short status) in front.TakeTxResponses())
            {
                if (structured)
                {
                    Assert.Contains(status, new short[] { 0, -1, 1 });
                    statuses[status] = statuses.GetValueOrDefault(status) + 1;
                }
            }

            front.TakeRxResponses();
            if (front.Backend.State != XenbusState.Connected || !structured)
            {
                front.Write("state", "6");
                front.Backend.Process();
                front.Write("state", "1");
                front.Backend.Process();
                front.Connect();
                Assert.Equal(XenbusState.Connected, front.Backend.State);
                reconnects++;
            }
        }

        Assert.True(front.Guest.Memory.GetSpan(CanaryPage, CanaryPages * 4096).IndexOfAnyExcept((byte)0xA5) < 0, "netback wrote outside the granted pages");
        Assert.Equal(0, front.Backend.Counters["internal-errors"]);   // no guest address went unchecked to the memory's own bounds check
        Assert.True(front.Port.SentCount == 0 || (front.Port.ShortestSent >= 14 && front.Port.LongestSent <= XenNetBackend.MaxFrame));
        Assert.True(statuses.GetValueOrDefault((short)0) > 0 && statuses.GetValueOrDefault((short)-1) > 0, "the generator reached both outcomes");
        _output.WriteLine($"seed {seed}: {rounds} rounds in {clock.Elapsed.TotalSeconds:0.0} s, tx responses " +
            $"({string.Join(", ", statuses.OrderBy(p => p.Key).Select(p => $"{p.Key}: {p.Value}"))}), {front.Port.SentCount} frames sent, " +
            $"{front.Backend.Counters["rx-packets"]} received, {reconnects} reconnects, {front.Backend.Counters["failures"]} failures");
    }

    /// <summary>What the host's port may hand over with a frame: nothing, a partial checksum, a large TCPv4/TCPv6 packet; sometimes nonsense.</summary>
    private static XenSegmentationOffload RandomOffload(Random random, int length) => random.Next(4) switch
    {
        0 => new XenSegmentationOffload(0, 0, (ushort)random.Next(length + 8), (ushort)(random.Next(2) == 0 ? 16 : 6), random.Next(2) == 0),
        1 => new XenSegmentationOffload((ushort)random.Next(1, 2000), (ushort)random.Next(100), (ushort)random.Next(length + 8), 16, random.Next(2) == 0),
        2 => new XenSegmentationOffload((ushort)random.Next(0x10000), (ushort)random.Next(0x10000), (ushort)random.Next(0x10000), (ushort)random.Next(0x10000), random.Next(2) == 0),
        _ => default,
    };

    private static void QueueChain(FakeNetFrontend front, Random random)
    {
        int slots = random.Next(10) == 0 ? random.Next(1, 24) : random.Next(1, 4);
        ushort total = (ushort)(random.Next(4) == 0 ? random.Next(0x10000) : random.Next(14, 3000));
        for (int i = 0; i < slots; i++)
        {
            ushort flags = (ushort)(i < slots - 1 ? XenNetBackend.TxMoreData : 0);
            if (random.Next(6) == 0)
            {
                flags |= (ushort)random.Next(0x10000);
            }
            else if (random.Next(3) == 0)
            {
                flags |= XenNetBackend.TxChecksumBlank;
            }

            uint gref = random.Next(12) == 0 ? (uint)random.Next() : FirstRef + (uint)random.Next((int)RefCount);
            ushort offset = (ushort)(random.Next(5) == 0 ? random.Next(0x10000) : random.Next(4096));
            ushort size = i == 0 ? total : (ushort)random.Next(random.Next(5) == 0 ? 0x10000 : 1500);
            front.QueueTx(gref, offset, flags, (ushort)random.Next(0x10000), size);
        }

        if (random.Next(20) == 0)
        {
            // A slot of random bytes.
            random.NextBytes(front.TxSlot(front.TxProducer - 1));
        }
    }

    private static void ScrambleGrants(FakeXenGuest guest, Random random)
    {
        for (uint i = 0; i < RefCount; i++)
        {
            ulong entry = FakeXenGuest.GrantFrame + ((FirstRef + i) * 8);
            uint frame = random.Next(10) switch
            {
                0 => (uint)random.Next(),
                1 => 0x400 + (uint)random.Next(0x1000),
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
            guest.Memory.Write<uint>(entry + 4, frame);
            guest.Memory.Write<uint>(entry, (uint)(grantee << 16) | flags);
        }
    }
}
