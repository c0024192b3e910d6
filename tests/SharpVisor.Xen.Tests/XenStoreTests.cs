using System.Buffers.Binary;
using System.Text;
using SharpVisor.Memory;

namespace SharpVisor.Xen.Tests;

public sealed class XenStoreTests : IDisposable
{
    private const ushort Guest = 1;
    private const ulong Ring = 0x40000;

    private readonly XenStore _store = new();
    private readonly GuestMemory _memory = GuestMemory.CreateRam(4 << 20);
    private readonly FakeHypervisorHost _host = new();
    private readonly XenDomain _xen;

    public XenStoreTests()
    {
        _xen = new XenDomain(_memory, new XenDomainOptions());
        _xen.Connect(_host);
        _store.Mkdir(0, 0, "/local/domain/1");
        _store.SetPerms(0, 0, "/local/domain/1", ["n0", "r1"]);
        _store.Mkdir(0, 0, "/local/domain/1/device");
        _store.SetPerms(0, 0, "/local/domain/1/device", ["n1"]);
        _store.Write(0, "/local/domain/1/name", "guest");
    }

    public void Dispose()
    {
        _xen.Dispose();
        _memory.Dispose();
    }

    [Fact]
    public void ReadWriteDirectoryAndRelativePaths()
    {
        _store.Write(Guest, 0, "device/vbd/51712/state", "1"u8);
        Assert.Equal("1"u8.ToArray(), _store.Read(0, 0, "/local/domain/1/device/vbd/51712/state"));
        Assert.Equal(["vbd"], _store.Directory(Guest, 0, "device"));
        Assert.Equal("guest"u8.ToArray(), _store.Read(Guest, 0, "name"));
        Assert.Equal(["n1"], _store.GetPerms(Guest, 0, "device/vbd"));   // created by the guest: owned by it

        _store.Remove(Guest, 0, "device/vbd");
        Assert.Equal("ENOENT", Assert.Throws<XenStoreException>(() => _store.Read(Guest, 0, "device/vbd/51712/state")).Error);
    }

    [Fact]
    public void PermissionsKeepTheGuestToWhatItMayTouch()
    {
        _store.Write(0, "/local/domain/0/backend/secret", "x");
        _store.SetPerms(0, 0, "/local/domain/0/backend/secret", ["n0"]);
        Assert.Equal("EACCES", Assert.Throws<XenStoreException>(() => _store.Read(Guest, 0, "/local/domain/0/backend/secret")).Error);
        Assert.Equal("EACCES", Assert.Throws<XenStoreException>(() => _store.Write(Guest, 0, "name", "evil"u8)).Error);
        Assert.Equal("EACCES", Assert.Throws<XenStoreException>(() => _store.SetPerms(Guest, 0, "name", ["b1"])).Error);
        Assert.Equal("EINVAL", Assert.Throws<XenStoreException>(() => _store.Write(Guest, 0, "device/a//b", "1"u8)).Error);
        Assert.Equal("E2BIG", Assert.Throws<XenStoreException>(() => _store.Write(Guest, 0, "device/big", new byte[5000])).Error);
    }

    [Fact]
    public void WatchesFireAtOnceAndOnChangesBelow()
    {
        var events = new List<string>();
        _store.AddWatch(0, "/local/domain/1/device", "tok", (p, t) => events.Add($"{p} {t}"));
        _store.Write(Guest, 0, "device/vif/0/state", "4"u8);
        _store.Write(0, "/local/domain/1/name-other", "x");   // not below the watched path
        Assert.Equal("/local/domain/1/device tok", events[0]);
        Assert.Contains("/local/domain/1/device/vif/0/state tok", events);
        Assert.DoesNotContain(events, e => e.Contains("name-other", StringComparison.Ordinal));
    }

    [Fact]
    public void TransactionsCommitOrFailWithEagainOnConflict()
    {
        uint t = _store.StartTransaction(Guest);
        _store.Write(Guest, t, "device/x", "1"u8);
        Assert.Equal("ENOENT", Assert.Throws<XenStoreException>(() => _store.Read(Guest, 0, "device/x")).Error);
        _store.EndTransaction(Guest, t, commit: true);
        Assert.Equal("1"u8.ToArray(), _store.Read(Guest, 0, "device/x"));

        uint a = _store.StartTransaction(Guest);
        Assert.Equal("1"u8.ToArray(), _store.Read(Guest, a, "device/x"));
        _store.Write(Guest, 0, "device/x", "2"u8);   // someone else changes what it read
        _store.Write(Guest, a, "device/y", "3"u8);
        Assert.Equal("EAGAIN", Assert.Throws<XenStoreException>(() => _store.EndTransaction(Guest, a, commit: true)).Error);
        Assert.Equal("ENOENT", Assert.Throws<XenStoreException>(() => _store.Read(Guest, 0, "device/y")).Error);

        uint b = _store.StartTransaction(Guest);
        _store.Write(Guest, b, "device/z", "4"u8);
        _store.EndTransaction(Guest, b, commit: false);
        Assert.Equal("ENOENT", Assert.Throws<XenStoreException>(() => _store.Read(Guest, 0, "device/z")).Error);
    }

    [Fact]
    public void TheGuestTalksXsWireOverTheRing()
    {
        var connection = new XenStoreConnection(_xen, _store, Ring);
        Assert.Equal(Ring >> 12, _xen.GetParam(HvmParam.StorePfn));
        Assert.Equal((ulong)connection.Port, _xen.GetParam(HvmParam.StoreEvtchn));

        Request(2, 7, "name\0");               // XS_READ, req_id 7
        Request(11, 8, "device/k\0value");     // XS_WRITE
        Request(2, 9, "/local/domain/0/nope\0");
        connection.Service();

        List<(uint Type, uint Id, string Payload)> replies = Replies();
        Assert.Equal((2u, 7u, "guest"), replies[0]);
        Assert.Equal((11u, 8u, "OK\0"), replies[1]);
        Assert.Equal((16u, 9u, "ENOENT\0"), replies[2]);
        Assert.Equal("value"u8.ToArray(), _store.Read(0, 0, "/local/domain/1/device/k"));

        // Linux writes the header, notifies, then the payload: the header is consumed at once.
        Request(2, 11, "name\0", splitAfterHeader: connection);
        connection.Service();
        Assert.Equal((2u, 11u, "guest"), Assert.Single(Replies()));

        // The names `top` and the daemon's metrics show (the VMM prefixes them with xen-xenstore-).
        Assert.Equal(4, _store.Counters["requests"]);
        Assert.Equal(3, _store.Counters["Read"]);
        Assert.Equal(1, _store.Counters["Write"]);
        Assert.Equal(1, _store.Counters["error-ENOENT"]);

        // A hostile length fails the connection, not the host.
        Request(2, 10, "x\0", lengthOverride: 1 << 20);
        connection.Service();
        Assert.True(connection.Failed);
    }

    [Fact]
    public void AnotherDomainsTreeThisStoreDoesNotHoldIsRoutedToItsHolder()
    {
        // Domain 2's store (in its own VMM) holds its back-end directory; this guest reads, writes and watches it there.
        var holder = new XenStore();
        XenDriverDomainLayout.SeedBackend(holder, frontend: Guest, backend: 2, index: 0, "/dev/xvda", "ca:0", readOnly: false);
        holder.Mkdir(0, 0, "/local/domain/2/private");
        holder.SetPerms(0, 0, "/local/domain/2/private", ["n2"]);
        _store.Mkdir(0, 0, "/local/domain/3/backend");   // a tree this store holds (a SharpVisor driver domain's) stays here
        _store.SetPerms(0, 0, "/local/domain/3/backend", ["n3", "r1"]);
        var remote = new StoreInAnotherProcess(holder, Guest);
        var connection = new XenStoreConnection(_xen, _store, Ring) { Remote = remote };
        const string Backend = "/local/domain/2/backend/vbd/1/51712";

        Request(2, 1, Backend + "/physical-device\0");                     // XS_READ
        Request(1, 2, Backend + "\0");                                     // XS_DIRECTORY
        Request(4, 3, Backend + "/state\0tok\0");                          // XS_WATCH
        Request(11, 4, Backend + "/state\0" + "4");                        // XS_WRITE: not the front end's node
        Request(2, 5, "/local/domain/2/private\0");
        Request(2, 6, "/local/domain/9/name\0");                           // nobody holds domain 9
        Request(12, 7, Backend + "\0");                                    // XS_MKDIR is not routed
        Request(2, 8, "/local/domain/3/backend\0");                        // held here
        connection.Service();
        List<(uint Type, uint Id, string Payload)> all = Replies();
        Assert.Contains((15u, 0u, Backend + "/state\0tok\0"), all);   // the watch fires once at once, with the guest's token
        Dictionary<uint, (uint Type, uint Id, string Payload)> replies = all.Where(r => r.Type != 15).ToDictionary(r => r.Id);
        Assert.Equal((2u, 1u, "ca:0"), replies[1]);
        Assert.Contains("physical-device", replies[2].Payload.Split('\0'));
        Assert.Equal((4u, 3u, "OK\0"), replies[3]);
        Assert.Equal((16u, 4u, "EACCES\0"), replies[4]);
        Assert.Equal((16u, 5u, "EACCES\0"), replies[5]);
        Assert.Equal((16u, 6u, "ENOENT\0"), replies[6]);
        Assert.Equal((16u, 7u, "EACCES\0"), replies[7]);
        Assert.Equal((2u, 8u, ""), replies[8]);

        // The back end changes its state in its own store: the guest's watch fires here.
        holder.Write(2, Backend + "/state", "4");
        Assert.Equal((15u, 0u, Backend + "/state\0tok\0"), Assert.Single(Replies()));
        Assert.Equal(7, _store.Counters["routed-requests"]);
    }

    [Fact]
    public void ARelativeWatchGetsRelativeEventPathsAsXenstoredGivesThem()
    {
        // Linux's xenbus backend watches "backend" and takes each event's path apart by levels.
        var events = new List<(string Path, string Token)>();
        _store.AddWatch(Guest, "device", "rel", (path, token) => events.Add((path, token)));
        _store.AddWatch(Guest, "/local/domain/1/device", "abs", (path, token) => events.Add((path, token)));
        _store.Write(0, "/local/domain/1/device/vbd/51712/state", "1");

        Assert.Equal(("device", "rel"), events[0]);
        Assert.Equal(("/local/domain/1/device", "abs"), events[1]);
        Assert.Contains(("device/vbd/51712/state", "rel"), events);
        Assert.Contains(("/local/domain/1/device/vbd/51712/state", "abs"), events);
    }

    /// <summary>A holder's store as the link reaches it: every request run as the caller's domain.</summary>
    private sealed class StoreInAnotherProcess(XenStore holder, ushort caller) : IXenStoreRemote
    {
        public byte[] Read(ushort domain, string path) => holder.Read(Holder(domain), 0, path);

        public IReadOnlyList<string> Directory(ushort domain, string path) => holder.Directory(Holder(domain), 0, path);

        public void Write(ushort domain, string path, string value) => holder.Write(Holder(domain), path, value);

        public void Watch(ushort domain, string path, string token, Action<string, string> fire)
        {
            Holder(domain);
            holder.AddWatch(caller, path, token, fire);
        }

        private ushort Holder(ushort domain) => domain == 2 ? caller : throw new XenStoreException("ENOENT", "nobody runs it");
    }

    private uint _reqProd;
    private uint _rspCons;

    private void Request(uint type, uint id, string payload, uint? lengthOverride = null, XenStoreConnection? splitAfterHeader = null)
    {
        byte[] body = Encoding.ASCII.GetBytes(payload);
        var message = new byte[16 + body.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(message, type);
        BinaryPrimitives.WriteUInt32LittleEndian(message.AsSpan(4), id);
        BinaryPrimitives.WriteUInt32LittleEndian(message.AsSpan(12), lengthOverride ?? (uint)body.Length);
        body.CopyTo(message, 16);
        for (int i = 0; i < message.Length; i++)
        {
            _memory.Write(Ring + (_reqProd++ & 1023), message[i]);
            if (i == 15 && splitAfterHeader is not null)
            {
                _memory.Write(Ring + 2052, _reqProd);
                splitAfterHeader.Service();
                Assert.Equal(_reqProd, _memory.Read<uint>(Ring + 2048));   // header consumed
            }
        }

        _memory.Write(Ring + 2052, _reqProd);
    }

    private List<(uint, uint, string)> Replies()
    {
        var replies = new List<(uint, uint, string)>();
        uint producer = _memory.Read<uint>(Ring + 2060);
        while (_rspCons < producer)
        {
            byte Next() => _memory.Read<byte>(Ring + 1024 + (_rspCons++ & 1023));
            var header = new byte[16];
            for (int i = 0; i < 16; i++)
            {
                header[i] = Next();
            }

            var body = new byte[BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(12))];
            for (int i = 0; i < body.Length; i++)
            {
                body[i] = Next();
            }

            replies.Add((BinaryPrimitives.ReadUInt32LittleEndian(header), BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(4)), Encoding.ASCII.GetString(body)));
        }

        _memory.Write(Ring + 2056, _rspCons);
        return replies;
    }
}
