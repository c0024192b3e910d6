namespace SharpVisor.Xen.Tests;

public sealed class XenBlockBackendTests : IDisposable
{
    private const ulong DataPage = 0x40000;
    private const ulong ReadPage = 0x41000;

    private readonly FakeBlockFrontend _front = new();

    public void Dispose() => _front.Dispose();

    [Fact]
    public void XenStoreHoldsThePairAndTheHandshakeConnects()
    {
        Assert.Equal("/local/domain/1/device/vbd/51712", _front.FrontendPath);
        Assert.Equal("/local/domain/0/backend/vbd/1/51712", _front.BackendPath);
        Assert.Equal("2", _front.ReadBackend("state"));                 // InitWait, readable by the guest
        Assert.Equal("1", _front.Store.TryReadString(_front.FrontendPath + "/state"));
        Assert.Equal(_front.BackendPath, _front.Store.TryReadString(_front.FrontendPath + "/backend"));
        Assert.Equal("51712", _front.Store.TryReadString(_front.FrontendPath + "/virtual-device"));
        Assert.Equal("1", _front.ReadBackend("feature-flush-cache"));
        Assert.Throws<XenStoreException>(() => _front.Store.Write(_front.Xen.DomainId, _front.BackendPath + "/state", "4"));   // Dom0's

        _front.Connect();
        Assert.Equal(XenbusState.Connected, _front.Backend.State);
        Assert.Equal("4", _front.ReadBackend("state"));
        Assert.Equal("2048", _front.ReadBackend("sectors"));
        Assert.Equal("512", _front.ReadBackend("sector-size"));
        Assert.Equal("0", _front.ReadBackend("info"));
        Assert.Equal(EventChannelState.Interdomain, _front.Xen.GetChannel(_front.Port)!.State);
    }

    [Fact]
    public void WritesReadsFlushesAndDiscardsMoveThroughGrants()
    {
        _front.Connect();
        byte[] pattern = Enumerable.Range(0, 4096).Select(i => (byte)(i * 7)).ToArray();
        _front.Memory.Write(DataPage, pattern);
        _front.Grant(9, DataPage >> 12, readOnly: true);
        _front.Grant(10, ReadPage >> 12, readOnly: false);

        _front.Queue(XenBlockBackend.OpWrite, 77, 2, (9, 0, 7));
        _front.Push();
        Assert.Equal([(77UL, XenBlockBackend.OpWrite, XenBlockBackend.StatusOkay)], _front.TakeResponses());
        Assert.Equal(pattern, _front.Image.Bytes.AsSpan(1024, 4096).ToArray());
        Assert.True(_front.PortPending());                              // rsp_event asked for a notification

        // Two segments: sectors 1..2 of the page (from the disk's sector 3), then 4..4 (sector 5).
        _front.Queue(XenBlockBackend.OpRead, 78, 3, (10, 1, 2), (10, 4, 4));
        _front.Queue(XenBlockBackend.OpFlushDiskCache, 79, 0);
        _front.QueueDiscard(80, 0, 0);                  // an empty discard
        _front.Push();
        List<(ulong Id, byte Op, short Status)> responses = _front.TakeResponses();
        Assert.Equal(3, responses.Count);
        Assert.All(responses, r => Assert.Equal(XenBlockBackend.StatusOkay, r.Status));
        Assert.Equal(pattern.AsSpan(512, 1024).ToArray(), _front.Memory.GetSpan(ReadPage + 512, 1024).ToArray());
        Assert.Equal(pattern.AsSpan(1536, 512).ToArray(), _front.Memory.GetSpan(ReadPage + 2048, 512).ToArray());
        Assert.Equal(1, _front.Image.Flushes);

        _front.QueueDiscard(81, 2, 8);
        _front.Push();
        Assert.Equal([(81UL, XenBlockBackend.OpDiscard, XenBlockBackend.StatusOkay)], _front.TakeResponses());
        Assert.All(_front.Image.Bytes.AsSpan(1024, 4096).ToArray(), b => Assert.Equal(0, b));
        Assert.Equal(0, _front.Grants.Counters["grant-refusals"]);
        Assert.Equal(0L, (long)(_front.Memory.Read<uint>(FakeBlockFrontend.GrantFrame + (9 * 8)) & (GrantTable.Reading | GrantTable.Writing)));
    }

    [Fact]
    public void IndirectRequestsCarryManySegmentsAndAreCheckedLikeDirectOnes()
    {
        const ulong IndirectPage = 0x50000;
        const ulong FirstData = 0x60000;
        const int Segments = 40;                                           // 160 KiB: more than a direct request's 11
        Assert.Equal("256", _front.ReadBackend("feature-max-indirect-segments"));
        _front.Connect();
        byte[] pattern = Enumerable.Range(0, Segments * 4096).Select(i => (byte)((i * 13) + (i >> 12))).ToArray();
        _front.Memory.Write(FirstData, pattern);
        var segments = new (uint Gref, byte First, byte Last)[Segments];
        for (int i = 0; i < Segments; i++)
        {
            _front.Grant((uint)(20 + i), (FirstData >> 12) + (ulong)i, readOnly: false);
            segments[i] = ((uint)(20 + i), 0, 7);
        }

        _front.WriteSegments(IndirectPage, segments);
        _front.Grant(19, IndirectPage >> 12, readOnly: true);
        _front.QueueIndirect(XenBlockBackend.OpWrite, 90, 8, Segments, 19);
        _front.Push();
        Assert.Equal([(90UL, XenBlockBackend.OpWrite, XenBlockBackend.StatusOkay)], _front.TakeResponses());
        Assert.Equal(pattern, _front.Image.Bytes.AsSpan(4096, pattern.Length).ToArray());

        // Read it back into other pages, one segment's sectors 2..5 only; then the bad ones.
        _front.Memory.Fill(FirstData, pattern.Length, 0);
        _front.WriteSegments(IndirectPage, (20, 2, 5), (21, 0, 7));
        _front.QueueIndirect(XenBlockBackend.OpRead, 91, 8, 2, 19);
        _front.QueueIndirect(XenBlockBackend.OpWrite, 92, 8, XenBlockBackend.MaxIndirectSegments + 1, 19);   // too many
        _front.QueueIndirect(XenBlockBackend.OpFlushDiskCache, 93, 8, 1, 19);                                // not a read or write
        _front.QueueIndirect(XenBlockBackend.OpRead, 94, 8, 1, 77);                                          // segments page never granted
        _front.QueueIndirect(XenBlockBackend.OpRead, 95, 2047, 2, 19);                                       // past the last sector
        _front.Push();
        Assert.Equal(
            [(91UL, XenBlockBackend.OpRead, (short)0), (92UL, XenBlockBackend.OpWrite, (short)-1), (93UL, XenBlockBackend.OpFlushDiskCache, (short)-1),
             (94UL, XenBlockBackend.OpRead, (short)-1), (95UL, XenBlockBackend.OpRead, (short)-1)],
            _front.TakeResponses());
        Assert.Equal(pattern.AsSpan(0, 2048).ToArray(), _front.Memory.GetSpan(FirstData + 1024, 2048).ToArray());
        Assert.Equal(pattern.AsSpan(2048, 4096).ToArray(), _front.Memory.GetSpan(FirstData + 4096, 4096).ToArray());
        Assert.False(_front.Backend.Failed);
        Assert.Equal(2, _front.Backend.Counters["indirect-requests"]);
    }

    [Fact]
    public void BadRequestsGetErrorsAndTheDeviceCarriesOn()
    {
        _front.Connect();
        _front.Grant(9, DataPage >> 12, readOnly: true);
        _front.Grant(10, ReadPage >> 12, readOnly: false);
        _front.Grant(11, DataPage >> 12, readOnly: false, grantee: 5);
        _front.Queue(XenBlockBackend.OpRead, 1, 0, (9, 0, 7));             // reading into a read-only grant
        _front.Queue(XenBlockBackend.OpWrite, 2, 0, (11, 0, 0));           // granted to another domain
        _front.Queue(XenBlockBackend.OpWrite, 3, 0, (12, 0, 0));           // never granted
        _front.Queue(XenBlockBackend.OpRead, 4, 2047, (10, 0, 1));         // past the last sector
        _front.Queue(XenBlockBackend.OpRead, 5, ulong.MaxValue, (10, 0, 0));
        _front.Queue(XenBlockBackend.OpRead, 6, 0, (10, 5, 4));            // first > last
        _front.Queue(XenBlockBackend.OpRead, 7, 0, (10, 0, 8));            // leaves the page
        _front.Queue(XenBlockBackend.OpRead, 8, 0);                        // no segments
        _front.Queue(XenBlockBackend.OpWriteBarrier, 9, 0);
        _front.Queue(XenBlockBackend.OpIndirect, 10, 0);                  // an indirect read of no segments
        _front.Queue(200, 11, 0);
        _front.Queue(XenBlockBackend.OpRead, 12, 2047, (uint.MaxValue, 0, 0));   // a reference beyond the table
        _front.QueueDiscard(13, 2000, 100);
        _front.Queue(XenBlockBackend.OpRead, 14, 2047, (10, 7, 7));        // the last sector: fine
        _front.Push();
        List<(ulong Id, byte Op, short Status)> responses = _front.TakeResponses();
        Assert.Equal(Enumerable.Range(1, 14).Select(i => (ulong)i), responses.Select(r => r.Id));
        Assert.Equal(
            [-1, -1, -1, -1, -1, -1, -1, -1, -2, -1, -2, -1, -1, 0],
            responses.Select(r => (int)r.Status));
        Assert.False(_front.Backend.Failed);
        Assert.All(_front.Image.Bytes, b => Assert.Equal(0, b));
    }

    [Fact]
    public void AReadOnlyDiskRefusesWritesAndSaysSo()
    {
        using var front = new FakeBlockFrontend(readOnly: true);
        front.Connect();
        Assert.Equal("4", front.ReadBackend("info"));       // VDISK_READONLY
        Assert.Equal("r", front.ReadBackend("mode"));
        front.Grant(9, DataPage >> 12, readOnly: true);
        front.Queue(XenBlockBackend.OpWrite, 1, 0, (9, 0, 0));
        front.QueueDiscard(2, 0, 1);
        front.Push();
        Assert.Equal([-1, -2], front.TakeResponses().Select(r => (int)r.Status));
    }

    [Fact]
    public void HostileRingIndicesFailTheDeviceOnce()
    {
        _front.Connect();
        _front.Memory.Write<uint>(FakeBlockFrontend.RingPage, 1000);   // req_prod far ahead
        _front.Backend.Process();
        Assert.True(_front.Backend.Failed);
        Assert.Equal("5", _front.ReadBackend("state"));                 // Closing
        Assert.Single(_front.Log, l => l.Contains("the device stops", StringComparison.Ordinal));
        Assert.Equal(EventChannelState.Unbound, _front.Xen.GetChannel(_front.Port)!.State);

        // The front end closes and starts over: the device serves it again.
        _front.WriteFrontend("state", "6");
        _front.Backend.Process();
        Assert.Equal("6", _front.ReadBackend("state"));
        _front.WriteFrontend("state", "1");
        _front.Backend.Process();
        Assert.Equal("2", _front.ReadBackend("state"));
        _front.Connect();
        Assert.Equal("4", _front.ReadBackend("state"));
    }

    [Fact]
    public void BadHandshakesAreRefusedWithoutConnecting()
    {
        _front.WriteFrontend("ring-ref", "99");        // never granted
        _front.WriteFrontend("event-channel", "5");
        _front.WriteFrontend("state", "3");
        _front.Backend.Process();
        Assert.True(_front.Backend.Failed);
        Assert.Equal("5", _front.ReadBackend("state"));
        Assert.Contains("ring-ref 99", _front.ReadBackend("error"), StringComparison.Ordinal);
    }
}
