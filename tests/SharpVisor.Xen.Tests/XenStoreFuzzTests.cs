using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using SharpVisor.Memory;
using Xunit.Abstractions;

namespace SharpVisor.Xen.Tests;

/// <summary>
/// The hostile xenbus: generated xs_wire traffic on the XenStore ring (plausible and random
/// message types, request ids, transaction ids, lengths — some past the 4096-byte limit —, paths,
/// values, tokens and permission lists, raw garbage, split writes, replies left unread, hostile
/// ring indices) against Dom0's XenStore in-process. No exception may escape; every reply echoes
/// its request's id and transaction and is that request's type or XS_ERROR with a Xen errno name;
/// no reply is longer than 4096 bytes; the store, the reply queue and the transactions stay
/// within their quotas; the pages around the ring stay untouched. A connection that fails (a
/// hostile length or indices) is replaced, as a rebooted guest would get a new one.
/// 10,000 rounds by default (./test.sh); SHARPVISOR_FUZZ_FULL=1 runs 1,000,000.
/// </summary>
public sealed class XenStoreFuzzTests
{
    private const ulong RingPage = 0x20000;
    private const ulong CanaryBefore = RingPage - 0x4000;
    private const ulong CanaryAfter = RingPage + 0x1000;
    private const int CanaryBytes = 0x4000;
    private const int HeaderSize = 16;

    private static readonly HashSet<string> s_errnos = ["EINVAL", "EACCES", "EEXIST", "EISDIR", "ENOENT", "ENOMEM", "ENOSPC", "EIO", "ENOTEMPTY", "ENOSYS", "EROFS", "EBUSY", "EAGAIN", "EISCONN", "E2BIG", "EPERM"];

    private static readonly string[] s_paths =
    [
        "data", "data/a", "data/a/b", "data/a/b/c", "data/x-1", "device", "device/vbd/51712/state", "control/shutdown",
        "memory/target", "name", "domid", "/local/domain/1/data/q", "/local/domain/1", "/local/domain/0/backend",
        "/local/domain/0/backend/vbd/1/51712/state", "/local/domain/2/data", "/local", "/", "", "@introduceDomain",
        "@releaseDomain", "data//a", "data/a/", "data/../x", "data/\u00e9", "/tool/xenstored", "data/a b",
    ];

    private readonly ITestOutputHelper _output;

    public XenStoreFuzzTests(ITestOutputHelper output) => _output = output;

    [Fact]
    public void GeneratedXsWireTrafficIsAnsweredWithRepliesOrErrnosAndStaysBounded()
    {
        bool full = Environment.GetEnvironmentVariable("SHARPVISOR_FUZZ_FULL") == "1";
        int rounds = full ? 1_000_000 : 10_000;
        int seed = int.TryParse(Environment.GetEnvironmentVariable("SHARPVISOR_FUZZ_SEED"), out int s) ? s : 11;
        var random = new Random(seed);
        using GuestMemory memory = GuestMemory.CreateRam(2 << 20);
        memory.Fill(CanaryBefore, CanaryBytes, 0x5A);
        memory.Fill(CanaryAfter, CanaryBytes, 0x5A);
        var store = new XenStore();
        XenStoreLayout.SeedDomain(store, 1, "fuzz", 65536, 1);
        int seeded = store.NodeCount;
        var guest = new Guest(memory, store);
        var replies = new Dictionary<string, long>();
        long requests = 0;
        long events = 0;
        int reconnects = 0;
        int maxQueued = 0;
        var clock = Stopwatch.StartNew();
        for (int round = 0; round < rounds; round++)
        {
            int action = random.Next(100);
            if (action < 85)
            {
                int count = random.Next(1, 6);
                for (int i = 0; i < count && guest.Outstanding.Count < 4096; i++)
                {
                    guest.Queue(Generate(random, guest));
                }
            }
            else if (action < 88)
            {
                // Garbage: random bytes into the request stream, framed as the server will read them.
                var junk = new byte[random.Next(1, 64)];
                random.NextBytes(junk);
                guest.Queue(junk);
            }
            else if (action < 95)
            {
                // Hostile ring indices: the connection must fail, not the host.
                memory.Write<uint>(RingPage + 2048 + ((ulong)random.Next(4) * 4), (uint)random.Next() | (random.Next(2) == 0 ? 0x80000000u : 0));
                guest.Connection.Service();
                guest.Scribbled = true;
            }

            // Push what fits, let the back end serve it, and (mostly) read the replies.
            guest.Push(random.Next(5) == 0 ? random.Next(1, 64) : int.MaxValue);
            guest.Connection.Service();
            maxQueued = Math.Max(maxQueued, guest.Connection.QueuedMessages);
            Assert.True(guest.Connection.QueuedMessages <= XenStoreConnection.MaxQueuedMessages, $"round {round}: {guest.Connection.QueuedMessages} replies queued");
            if (!guest.Scribbled && random.Next(8) != 0)
            {
                foreach ((uint type, uint id, uint transaction, byte[] payload) in guest.TakeReplies())
                {
                    Assert.True(payload.Length <= XenStoreConnection.MaxPayload, $"round {round}: a reply of {payload.Length} bytes");
                    if (type == (uint)XenStoreMessageType.WatchEvent)
                    {
                        events++;
                        Assert.Equal(2, payload.Count(b => b == 0));
                        Assert.Equal(0, payload[^1]);
                        continue;
                    }

                    Assert.True(guest.Outstanding.TryDequeue(out (uint Type, uint Id, uint Transaction) request), $"round {round}: a reply no request asked for");
                    Assert.Equal(request.Id, id);
                    Assert.Equal(request.Transaction, transaction);
                    requests++;
                    if (type == (uint)XenStoreMessageType.Error)
                    {
                        string errno = Encoding.ASCII.GetString(payload).TrimEnd('\0');
                        Assert.True(s_errnos.Contains(errno), $"round {round}: error '{errno}' for type {request.Type}");
                        replies[errno] = replies.GetValueOrDefault(errno) + 1;
                    }
                    else
                    {
                        Assert.Equal(request.Type, type);
                        replies["OK"] = replies.GetValueOrDefault("OK") + 1;
                        if (type == (uint)XenStoreMessageType.TransactionStart)
                        {
                            if (guest.Transactions.Count == 64)
                            {
                                guest.Transactions.RemoveAt(0);
                            }

                            guest.Transactions.Add(uint.Parse(Encoding.ASCII.GetString(payload).TrimEnd('\0'), System.Globalization.CultureInfo.InvariantCulture));
                        }
                    }
                }
            }

            Assert.True(store.NodeCount <= seeded + XenStore.MaxNodesPerDomain, $"round {round}: the store grew to {store.NodeCount} nodes");
            Assert.True(store.TransactionCount <= XenStore.MaxTransactionsPerDomain);
            if (guest.Broken && !guest.Scribbled)
            {
                // A declared length past 4096 must end the connection once the server reads that header.
                guest.Drain();
                Assert.True(guest.Connection.Failed, $"round {round}: a request longer than {XenStoreConnection.MaxPayload} bytes was taken");
            }

            if (guest.Broken || guest.Scribbled || guest.Connection.Failed)
            {
                // The next guest gets a new connection (a rebooted domain would).
                guest.Dispose();
                guest = new Guest(memory, store);
                reconnects++;
            }
        }

        guest.Dispose();
        Assert.True(memory.GetSpan(CanaryBefore, CanaryBytes).IndexOfAnyExcept((byte)0x5A) < 0, "the connection wrote before its ring page");
        Assert.True(memory.GetSpan(CanaryAfter, CanaryBytes).IndexOfAnyExcept((byte)0x5A) < 0, "the connection wrote after its ring page");
        Assert.True(replies.GetValueOrDefault("OK") > 0 && replies.GetValueOrDefault("ENOENT") > 0 && replies.GetValueOrDefault("EINVAL") > 0, "the generator reached replies and errors");
        _output.WriteLine($"seed {seed}: {rounds} rounds in {clock.Elapsed.TotalSeconds:0.0} s, {requests} replies checked " +
            $"({string.Join(", ", replies.OrderByDescending(p => p.Value).Select(p => $"{p.Key}: {p.Value}"))}), {events} watch events, " +
            $"{reconnects} failed connections replaced, at most {maxQueued} replies queued, {store.NodeCount} nodes at the end");
    }

    /// <summary>One xs_wire message: mostly well-formed requests of the guest's types, sometimes hostile headers.</summary>
    private static byte[] Generate(Random random, Guest guest)
    {
        XenStoreMessageType[] types =
        [
            XenStoreMessageType.Read, XenStoreMessageType.Write, XenStoreMessageType.Write, XenStoreMessageType.Mkdir,
            XenStoreMessageType.Rm, XenStoreMessageType.Directory, XenStoreMessageType.GetPerms, XenStoreMessageType.SetPerms,
            XenStoreMessageType.Watch, XenStoreMessageType.Unwatch, XenStoreMessageType.TransactionStart,
            XenStoreMessageType.TransactionEnd, XenStoreMessageType.GetDomainPath, XenStoreMessageType.IsDomainIntroduced,
            XenStoreMessageType.ResetWatches,
        ];
        uint type = random.Next(12) == 0 ? (uint)random.Next(random.Next(2) == 0 ? 32 : int.MaxValue) : (uint)types[random.Next(types.Length)];
        uint transaction = random.Next(3) switch
        {
            0 when guest.Transactions.Count > 0 => guest.Transactions[random.Next(guest.Transactions.Count)],
            1 when random.Next(4) == 0 => (uint)random.Next(),
            _ => 0,
        };
        string Path() => random.Next(6) switch
        {
            0 => RandomPath(random),
            1 or 2 => $"data/n{random.Next(3000)}/{random.Next(3)}",   // many nodes: the quota
            _ => s_paths[random.Next(s_paths.Length)],
        };
        var body = new List<byte>();
        void Add(string text, bool terminate = true)
        {
            body.AddRange(Encoding.UTF8.GetBytes(text));
            if (terminate)
            {
                body.Add(0);
            }
        }

        switch ((XenStoreMessageType)type)
        {
            case XenStoreMessageType.Write:
                Add(Path());
                var value = new byte[random.Next(6) == 0 ? random.Next(4200) : random.Next(32)];
                random.NextBytes(value);
                body.AddRange(value);
                break;
            case XenStoreMessageType.SetPerms:
                Add(Path());
                for (int i = random.Next(5); i > 0; i--)
                {
                    Add($"{"nrwbx"[random.Next(5)]}{(random.Next(4) == 0 ? random.Next(70000) : random.Next(3))}");
                }

                break;
            case XenStoreMessageType.Watch or XenStoreMessageType.Unwatch:
                Add(Path());
                Add($"tok{random.Next(200)}", random.Next(10) != 0);
                break;
            case XenStoreMessageType.TransactionEnd:
                Add(random.Next(5) switch { 0 => "F", 1 => "x", _ => "T" }, random.Next(10) != 0);
                break;
            case XenStoreMessageType.GetDomainPath:
                Add(random.Next(3) == 0 ? RandomPath(random) : random.Next(70000).ToString(System.Globalization.CultureInfo.InvariantCulture));
                break;
            case XenStoreMessageType.TransactionStart or XenStoreMessageType.ResetWatches or XenStoreMessageType.IsDomainIntroduced:
                Add(random.Next(4) == 0 ? Path() : "");
                break;
            default:
                if (random.Next(8) == 0)
                {
                    var noise = new byte[random.Next(200)];
                    random.NextBytes(noise);
                    body.AddRange(noise);
                }
                else
                {
                    Add(Path(), random.Next(10) != 0);
                }

                break;
        }

        uint length = random.Next(400) switch
        {
            0 => (uint)random.Next(),                    // past 4096: the connection fails
            1 => XenStoreConnection.MaxPayload + 1,
            _ => (uint)body.Count,
        };
        if (body.Count > XenStoreConnection.MaxPayload)
        {
            body.RemoveRange(XenStoreConnection.MaxPayload, body.Count - XenStoreConnection.MaxPayload);
            length = Math.Max(length, XenStoreConnection.MaxPayload + 1);
        }

        var message = new byte[HeaderSize + body.Count];
        BinaryPrimitives.WriteUInt32LittleEndian(message, type);
        BinaryPrimitives.WriteUInt32LittleEndian(message.AsSpan(4), (uint)random.Next());
        BinaryPrimitives.WriteUInt32LittleEndian(message.AsSpan(8), transaction);
        BinaryPrimitives.WriteUInt32LittleEndian(message.AsSpan(12), length);
        body.CopyTo(message, HeaderSize);
        return message;
    }

    private static string RandomPath(Random random)
    {
        const string alphabet = "abcdefgh0123456789-_@/";
        var text = new StringBuilder(random.Next(3) == 0 ? "data/" : "");
        int length = random.Next(8) == 0 ? random.Next(3100) : random.Next(1, 24);
        for (int i = 0; i < length; i++)
        {
            text.Append(alphabet[random.Next(alphabet.Length)]);
        }

        return text.ToString();
    }

    /// <summary>
    /// The guest's side of one connection: a new domain on the same memory and store (the ring
    /// zeroed), the request stream as the server frames it (a 16-byte header, then its declared
    /// length), and the replies read back.
    /// </summary>
    private sealed class Guest : IDisposable
    {
        private readonly GuestMemory _memory;
        private readonly XenDomain _domain;
        private readonly List<byte> _stream = [];
        private readonly List<byte> _replyStream = [];
        private readonly byte[] _frameHeader = new byte[HeaderSize];
        private int _frameFilled;
        private long _frameBody = -1;
        private uint _reqProd;
        private uint _rspCons;

        public Guest(GuestMemory memory, XenStore store)
        {
            _memory = memory;
            _domain = new XenDomain(memory, new XenDomainOptions { MemoryMap = [new XenMemoryMapEntry(0, 2 << 20, 1)] });
            _domain.Connect(new FakeHypervisorHost());
            Connection = new XenStoreConnection(_domain, store, RingPage);
        }

        public XenStoreConnection Connection { get; }

        /// <summary>The requests the server will answer, in order: those whose whole frame is in the stream.</summary>
        public Queue<(uint Type, uint Id, uint Transaction)> Outstanding { get; } = new();

        public List<uint> Transactions { get; } = [];

        /// <summary>A header with a length past 4096 is in the stream: the server must fail the connection on it.</summary>
        public bool Broken { get; private set; }

        /// <summary>The test scribbled over the ring indices: anything may follow, short of a host exception.</summary>
        public bool Scribbled { get; set; }

        /// <summary>Appends bytes to the request stream and notes each frame they complete, as the server will frame them.</summary>
        public void Queue(byte[] bytes)
        {
            foreach (byte b in bytes)
            {
                _stream.Add(b);
                if (_frameBody < 0)
                {
                    _frameHeader[_frameFilled++] = b;
                    if (_frameFilled == HeaderSize)
                    {
                        _frameBody = BinaryPrimitives.ReadUInt32LittleEndian(_frameHeader.AsSpan(12));
                        if (_frameBody > XenStoreConnection.MaxPayload)
                        {
                            Broken = true;   // the server will fail the connection on this header
                            return;
                        }

                        CompleteIfEmpty();
                    }
                }
                else
                {
                    _frameBody--;
                    CompleteIfEmpty();
                }
            }
        }

        /// <summary>Writes up to <paramref name="limit"/> queued bytes into `req` (as far as there is room) and publishes them.</summary>
        public void Push(int limit)
        {
            uint consumer = _memory.Read<uint>(RingPage + 2048);
            int room = (int)Math.Max(0, XenStoreConnection.RingSize - (long)(_reqProd - consumer));
            int n = Math.Min(Math.Min(room, limit), _stream.Count);
            for (int i = 0; i < n; i++)
            {
                _memory.Write(RingPage + (_reqProd++ & (XenStoreConnection.RingSize - 1)), _stream[i]);
            }

            _stream.RemoveRange(0, n);
            _memory.Write(RingPage + 2052, _reqProd);
        }

        /// <summary>Reads `rsp` and returns the whole messages in it.</summary>
        public List<(uint Type, uint Id, uint Transaction, byte[] Payload)> TakeReplies()
        {
            uint producer = _memory.Read<uint>(RingPage + 2060);
            Assert.True(producer - _rspCons <= XenStoreConnection.RingSize, "the response producer ran more than a ring ahead");
            while (_rspCons != producer)
            {
                _replyStream.Add(_memory.Read<byte>(RingPage + 1024 + (_rspCons++ & (XenStoreConnection.RingSize - 1))));
            }

            _memory.Write(RingPage + 2056, _rspCons);
            var messages = new List<(uint, uint, uint, byte[])>();
            while (_replyStream.Count >= HeaderSize)
            {
                byte[] header = _replyStream.GetRange(0, HeaderSize).ToArray();
                int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(12));
                Assert.InRange(length, 0, XenStoreConnection.MaxPayload);
                if (_replyStream.Count < HeaderSize + length)
                {
                    break;
                }

                messages.Add((BinaryPrimitives.ReadUInt32LittleEndian(header), BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(4)),
                    BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(8)), _replyStream.GetRange(HeaderSize, length).ToArray()));
                _replyStream.RemoveRange(0, HeaderSize + length);
            }

            return messages;
        }

        /// <summary>Pushes the rest of the stream while reading (and dropping) replies, until the server failed or took it all.</summary>
        public void Drain()
        {
            for (int i = 0; i < 100_000 && !Connection.Failed && (_stream.Count > 0 || _memory.Read<uint>(RingPage + 2048) != _reqProd); i++)
            {
                Push(int.MaxValue);
                Connection.Service();
                TakeReplies();
            }
        }

        public void Dispose()
        {
            Connection.Close();
            _domain.Dispose();
        }

        private void CompleteIfEmpty()
        {
            if (_frameBody == 0)
            {
                Outstanding.Enqueue((BinaryPrimitives.ReadUInt32LittleEndian(_frameHeader), BinaryPrimitives.ReadUInt32LittleEndian(_frameHeader.AsSpan(4)),
                    BinaryPrimitives.ReadUInt32LittleEndian(_frameHeader.AsSpan(8))));
                _frameFilled = 0;
                _frameBody = -1;
            }
        }
    }
}
