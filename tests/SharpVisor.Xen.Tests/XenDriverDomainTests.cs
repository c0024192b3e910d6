using System.Buffers.Binary;
using System.Globalization;
using SharpVisor.Memory;

namespace SharpVisor.Xen.Tests;

/// <summary>
/// Driver domains in one process (docs/xen.md, "Driver domains"): the XenStore the front end
/// (domain 1) and its driver domain (domain 2) share — Xen's permission rules for each, watches
/// across domains, quotas per domain — and blkback in domain 2 serving domain 1's ring only by
/// grant copies, surviving its own death: a new driver domain takes over the connected ring and
/// answers the requests that were in flight.
/// </summary>
public sealed class XenDriverDomainTests : IDisposable
{
    private const ushort Frontend = 1;
    private const ushort Driver = 2;
    private const ushort Stranger = 3;
    private const ulong RingPage = 0x30000;
    private const ulong DataPage = 0x31000;
    private const uint RingRef = 8;
    private const uint DataRef = 9;

    private readonly FakeXenGuest _guest = new();
    private readonly GuestMemory _driverMemory = GuestMemory.CreateRam(2 << 20);
    private readonly XenDomain _driver;
    private readonly InProcessInterdomainLink _linkOfDriver;
    private readonly MemoryDiskImage _image = new(1 << 20);
    private readonly string _backendPath;
    private readonly string _frontendPath;
    private readonly List<string> _log = [];
    private uint _requestProducer;
    private uint _responseConsumer;
    private int _port;

    public XenDriverDomainTests()
    {
        _driver = new XenDomain(_driverMemory, new XenDomainOptions { DomainId = Driver });
        var domains = new Dictionary<ushort, (XenDomain, GrantTable)>
        {
            [Frontend] = (_guest.Xen, _guest.Grants),
            [Driver] = (_driver, new GrantTable(_driver)),
        };
        _linkOfDriver = new InProcessInterdomainLink(domains, Driver);
        _driver.AttachInterdomainLink(_linkOfDriver);
        _guest.Xen.AttachInterdomainLink(new InProcessInterdomainLink(domains, Frontend));
        _backendPath = XenDriverDomainLayout.SeedVbd(_guest.Store, Frontend, Driver, 0, "/images/disk.img", readOnly: false);
        _frontendPath = XenDriverDomainLayout.FrontendPath(Frontend, 51712);
    }

    public void Dispose()
    {
        _driver.Dispose();
        _driverMemory.Dispose();
        _guest.Dispose();
    }

    [Fact]
    public void TheSharedStoreGivesEachDomainWhatItsPermissionsAllow()
    {
        XenStore store = _guest.Store;
        var frontend = new XenStoreClient(store, Frontend);
        var driver = new XenStoreClient(store, Driver);
        var stranger = new XenStoreClient(store, Stranger);
        Assert.Equal("/local/domain/2/backend/vbd/1/51712", _backendPath);
        Assert.Equal(_backendPath, frontend.Read("device/vbd/51712/backend"));
        Assert.Equal("2", frontend.Read("device/vbd/51712/backend-id"));
        Assert.Equal("/images/disk.img", driver.Read(_backendPath + "/params"));

        // The front end writes its own nodes; the driver domain reads them (they inherit r2), writes none.
        frontend.Write("device/vbd/51712/ring-ref", "8");
        Assert.Equal("8", driver.Read(_frontendPath + "/ring-ref"));
        Assert.Equal("EACCES", Assert.Throws<XenStoreException>(() => driver.Write(_frontendPath + "/ring-ref", "9")).Error);
        Assert.Equal("EACCES", Assert.Throws<XenStoreException>(() => driver.Write(_frontendPath + "/new-node", "1")).Error);

        // The driver domain writes its back-end directory (as the owner); the front end only reads it.
        driver.Write(_backendPath + "/sectors", "2048");
        Assert.Equal("2048", frontend.Read(_backendPath + "/sectors"));
        Assert.Equal("EACCES", Assert.Throws<XenStoreException>(() => frontend.Write(_backendPath + "/state", "4")).Error);
        Assert.Equal(["n2", "r1"], store.GetPerms(0, 0, _backendPath + "/sectors"));

        // Neither reads the other's private nodes; a third domain reads nothing of the pair.
        Assert.Null(driver.Read("/local/domain/1/name"));
        Assert.Null(driver.Read("/local/domain/1/control/platform-feature-xs_reset_watches"));
        Assert.Null(frontend.Read("/local/domain/2/backend/vbd/1"));
        Assert.Null(stranger.Read(_frontendPath + "/ring-ref"));
        Assert.Null(stranger.Read(_backendPath + "/sectors"));
        Assert.Throws<XenStoreException>(() => stranger.Write(_backendPath + "/state", "6"));

        // A guest cannot give its nodes to the other domain (that would escape its quota).
        Assert.Equal("EPERM", Assert.Throws<XenStoreException>(() => store.SetPerms(Driver, 0, _backendPath + "/sectors", ["n1"])).Error);
    }

    [Fact]
    public void WatchesFireAcrossDomainsOnlyForThoseWhoMayRead()
    {
        XenStore store = _guest.Store;
        int driverSaw = 0, frontendSaw = 0, strangerSaw = 0;
        new XenStoreClient(store, Driver).Watch(_frontendPath + "/state", () => driverSaw++);
        new XenStoreClient(store, Frontend).Watch(_backendPath + "/state", () => frontendSaw++);
        new XenStoreClient(store, Stranger).Watch(_frontendPath + "/state", () => strangerSaw++);
        (int d, int f, int s) = (driverSaw, frontendSaw, strangerSaw);

        store.Write(Frontend, _frontendPath + "/state", "3");
        Assert.Equal(d + 1, driverSaw);
        store.Write(Driver, _backendPath + "/state", "4");
        Assert.Equal(f + 1, frontendSaw);
        Assert.Equal(s, strangerSaw);   // a domain that may not read the node gets no event for it
    }

    [Fact]
    public void QuotasStayPerDomainInTheSharedStore()
    {
        XenStore store = _guest.Store;
        int created = 0;
        XenStoreException refused = Assert.Throws<XenStoreException>(() =>
        {
            for (int i = 0; i <= XenStore.MaxNodesPerDomain; i++)
            {
                store.Write(Driver, $"{_backendPath}/n{i}", "x");
                created++;
            }
        });
        Assert.Equal("ENOSPC", refused.Error);
        Assert.True(created < XenStore.MaxNodesPerDomain);

        // The driver domain's nodes do not count against the front end's quota.
        store.Write(Frontend, _frontendPath + "/ring-ref", "8");
        store.Write(Frontend, "data/still-room", "1");
    }

    [Fact]
    public void BlkbackInTheDriverDomainServesTheRingByGrantCopiesOnly()
    {
        using var backend = NewBackend();
        Assert.Equal(XenbusState.InitWait, backend.State);
        Assert.Equal("2", _guest.Store.TryReadString(_backendPath + "/state"));
        ConnectFrontend();
        backend.Process();
        Assert.Equal(XenbusState.Connected, backend.State);
        Assert.Equal("2048", _guest.Store.TryReadString(_backendPath + "/sectors"));
        Assert.Equal((EventChannelState.Interdomain, Driver), (_guest.Xen.GetChannel(_port)!.State, _guest.Xen.GetChannel(_port)!.RemoteDomain));

        _guest.Memory.Fill(DataPage, 4096, 0x5A);
        QueueReadWrite(XenBlockBackend.OpWrite, 7, sector: 16);
        Push(backend);
        Assert.Equal([(7UL, XenBlockBackend.OpWrite, XenBlockBackend.StatusOkay)], TakeResponses());
        Assert.True(_guest.Pending(_port));
        Assert.All(_image.Bytes.AsSpan(16 * 512, 4096).ToArray(), b => Assert.Equal(0x5A, b));

        _image.Bytes.AsSpan(32 * 512, 4096).Fill(0xC3);
        QueueReadWrite(XenBlockBackend.OpRead, 8, sector: 32);
        Push(backend);
        Assert.Equal([(8UL, XenBlockBackend.OpRead, XenBlockBackend.StatusOkay)], TakeResponses());
        Assert.Equal(0xC3, _guest.Memory.Read<byte>(DataPage + 100));

        // A page granted to Dom0 instead of the driver domain is refused by the front end's table.
        _guest.Grant(DataRef, DataPage >> 12, readOnly: false, grantee: 0);
        QueueReadWrite(XenBlockBackend.OpWrite, 9, sector: 0);
        Push(backend);
        Assert.Equal([(9UL, XenBlockBackend.OpWrite, XenBlockBackend.StatusError)], TakeResponses());
        Assert.Equal(XenbusState.Connected, backend.State);
        Assert.True(backend.Counters["writes"] >= 1);
    }

    [Fact]
    public void ARestartedDriverDomainTakesOverTheRingAndAnswersWhatWasInFlight()
    {
        var first = NewBackend();
        ConnectFrontend();
        first.Process();
        Assert.Equal(XenbusState.Connected, first.State);

        // The driver domain dies (kill -9: no close): the front end's port is unbound for it again.
        _linkOfDriver.Gone.Add(Frontend);
        first.Dispose();
        _linkOfDriver.Gone.Remove(Frontend);
        _guest.Xen.PeerGone(Driver);
        Assert.Equal(EventChannelState.Unbound, _guest.Xen.GetChannel(_port)!.State);

        // The guest keeps queueing; nobody answers.
        _guest.Memory.Fill(DataPage, 4096, 0x77);
        QueueReadWrite(XenBlockBackend.OpWrite, 21, sector: 64);
        _guest.Memory.Write<uint>(RingPage, _requestProducer);
        Assert.Empty(TakeResponses());

        // The daemon starts it again: it re-binds the front end's port and resumes at rsp_prod.
        using var second = NewBackend();
        second.Process();
        Assert.Equal(XenbusState.Connected, second.State);
        Assert.Equal([(21UL, XenBlockBackend.OpWrite, XenBlockBackend.StatusOkay)], TakeResponses());
        Assert.All(_image.Bytes.AsSpan(64 * 512, 4096).ToArray(), b => Assert.Equal(0x77, b));
        Assert.Equal(EventChannelState.Interdomain, _guest.Xen.GetChannel(_port)!.State);
        Assert.Equal(1, second.Counters["requests-taken-over"]);
        Assert.Contains(_log, l => l.Contains("took over the ring at rsp_prod 0 with 1 request(s) waiting", StringComparison.Ordinal));

        QueueReadWrite(XenBlockBackend.OpRead, 22, sector: 64);
        _guest.Memory.Fill(DataPage, 4096, 0);
        Push(second);
        Assert.Equal([(22UL, XenBlockBackend.OpRead, XenBlockBackend.StatusOkay)], TakeResponses());
        Assert.Equal(0x77, _guest.Memory.Read<byte>(DataPage + 4095));
    }

    [Fact]
    public void AHostileFrontEndFailsOnlyItsDevice()
    {
        using var backend = NewBackend();

        // The ring granted to someone else: the copy is refused, the device fails, nothing throws.
        _guest.Memory.Fill(RingPage, 4096, 0);
        _guest.Grant(RingRef, RingPage >> 12, readOnly: false, grantee: Stranger);
        _port = _guest.AllocateUnboundFor(Driver);
        WriteFrontend("ring-ref", RingRef.ToString(CultureInfo.InvariantCulture));
        WriteFrontend("event-channel", _port.ToString(CultureInfo.InvariantCulture));
        WriteFrontend("state", "3");
        backend.Process();
        Assert.True(backend.Failed);
        Assert.Equal("5", _guest.Store.TryReadString(_backendPath + "/state"));
        Assert.Contains("ring-ref", _guest.Store.TryReadString(_backendPath + "/error"));

        // The front end starts over with a good ring: served.
        WriteFrontend("state", "1");
        backend.Process();
        ConnectFrontend();
        backend.Process();
        Assert.Equal(XenbusState.Connected, backend.State);

        // Indices more than a ring apart fail the device once.
        _guest.Memory.Write<uint>(RingPage, 1000);
        backend.Process();
        Assert.True(backend.Failed);
        Assert.Contains(_log, l => l.Contains("more than a ring ahead", StringComparison.Ordinal));
    }

    private XenDriverBlockBackend NewBackend() =>
        new(_driver, new XenStoreClient(_guest.Store, Driver), Frontend, _backendPath, _image, _log.Add);

    /// <summary>What blkfront's talk_to_blkback does, for the driver domain named by backend-id.</summary>
    private void ConnectFrontend()
    {
        _guest.Memory.Fill(RingPage, 4096, 0);
        _guest.Memory.Write<uint>(RingPage + 4, 1);
        _guest.Memory.Write<uint>(RingPage + 12, 1);
        _requestProducer = _responseConsumer = 0;
        _guest.Grant(RingRef, RingPage >> 12, readOnly: false, grantee: Driver);
        _guest.Grant(DataRef, DataPage >> 12, readOnly: false, grantee: Driver);
        _port = _guest.AllocateUnboundFor(Driver);
        WriteFrontend("ring-ref", RingRef.ToString(CultureInfo.InvariantCulture));
        WriteFrontend("event-channel", _port.ToString(CultureInfo.InvariantCulture));
        WriteFrontend("protocol", "x86_64-abi");
        WriteFrontend("state", "3");
    }

    private void WriteFrontend(string key, string value) => _guest.Store.Write(Frontend, $"{_frontendPath}/{key}", value);

    private void QueueReadWrite(byte op, ulong id, ulong sector)
    {
        Span<byte> entry = Slot(_requestProducer++);
        entry.Clear();
        entry[0] = op;
        entry[1] = 1;
        BinaryPrimitives.WriteUInt64LittleEndian(entry[8..], id);
        BinaryPrimitives.WriteUInt64LittleEndian(entry[16..], sector);
        BinaryPrimitives.WriteUInt32LittleEndian(entry[24..], DataRef);
        entry[28] = 0;
        entry[29] = 7;
    }

    private void Push(XenDriverBlockBackend backend)
    {
        _guest.Memory.Write<uint>(RingPage, _requestProducer);
        _guest.Send(_port);
        backend.Process();
    }

    private List<(ulong Id, byte Op, short Status)> TakeResponses()
    {
        var responses = new List<(ulong, byte, short)>();
        uint producer = _guest.Memory.Read<uint>(RingPage + 8);
        while (_responseConsumer != producer)
        {
            Span<byte> entry = Slot(_responseConsumer++);
            responses.Add((BinaryPrimitives.ReadUInt64LittleEndian(entry), entry[8], BinaryPrimitives.ReadInt16LittleEndian(entry[10..])));
        }

        return responses;
    }

    private Span<byte> Slot(uint index) =>
        _guest.Memory.GetSpan(RingPage + XenBlockBackend.RingHeaderSize + ((index % XenBlockBackend.RingEntries) * XenBlockBackend.EntrySize), XenBlockBackend.EntrySize);
}
