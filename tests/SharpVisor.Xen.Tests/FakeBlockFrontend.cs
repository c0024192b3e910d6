using System.Buffers.Binary;
using System.Globalization;
using SharpVisor.Memory;

namespace SharpVisor.Xen.Tests;

/// <summary>
/// A guest's blkfront for in-process blkback tests: over a <see cref="FakeXenGuest"/> (the domain
/// with shared_info, one grant frame and the seeded XenStore), the front end's half of the
/// handshake and the ring (requests written into the shared page, responses read back).
/// </summary>
internal sealed class FakeBlockFrontend : IDisposable
{
    public const ulong GrantFrame = FakeXenGuest.GrantFrame;
    public const ulong RingPage = 0x30000;
    public const uint RingRef = 8;
    private const ushort Dom0 = 0;

    private readonly FakeXenGuest _guest = new();
    private uint _requestProducer;
    private uint _responseConsumer;

    public FakeBlockFrontend(int diskSize = 1 << 20, bool readOnly = false)
    {
        Image = new MemoryDiskImage(diskSize, readOnly);
        Backend = new XenBlockBackend(Xen, Store, Grants, Image, 0, Log.Add);
    }

    public GuestMemory Memory => _guest.Memory;

    public XenDomain Xen => _guest.Xen;

    public XenStore Store => _guest.Store;

    public GrantTable Grants => _guest.Grants;

    public MemoryDiskImage Image { get; }

    public XenBlockBackend Backend { get; }

    public List<string> Log { get; } = [];

    public int Port { get; private set; }

    /// <summary>The front end's private request producer (requests queued, published or not).</summary>
    public uint PendingProducer => _requestProducer;

    public string FrontendPath => Backend.FrontendPath;

    public string BackendPath => Backend.BackendPath;

    /// <summary>What blkfront's talk_to_blkback does: grant the ring, allocate a port for Dom0, publish both, Initialised.</summary>
    public void Connect()
    {
        Memory.Fill(RingPage, 4096, 0);
        Memory.Write<uint>(RingPage + 4, 1);    // req_event
        Memory.Write<uint>(RingPage + 12, 1);   // rsp_event
        _requestProducer = _responseConsumer = 0;
        Grant(RingRef, RingPage >> 12, readOnly: false);
        if (Port != 0)
        {
            // A reconnect: blkfront frees its old port first.
            _guest.Close(Port);
        }

        Port = _guest.AllocateUnboundForDom0();
        WriteFrontend("ring-ref", RingRef.ToString(CultureInfo.InvariantCulture));
        WriteFrontend("event-channel", Port.ToString(CultureInfo.InvariantCulture));
        WriteFrontend("protocol", "x86_64-abi");
        WriteFrontend("state", "3");
        Backend.Process();
    }

    public void WriteFrontend(string key, string value) => Store.Write(Xen.DomainId, $"{FrontendPath}/{key}", value);

    /// <summary>A node of the back end's directory, read as the guest reads it (its permissions apply).</summary>
    public string ReadBackend(string key) => System.Text.Encoding.UTF8.GetString(Store.Read(Xen.DomainId, 0, $"{BackendPath}/{key}"));

    /// <summary>Writes grant entry <paramref name="reference"/>: permit access for Dom0 to <paramref name="frame"/>.</summary>
    public void Grant(uint reference, ulong frame, bool readOnly, ushort grantee = Dom0) => _guest.Grant(reference, frame, readOnly, grantee);

    /// <summary>Puts a request into the next slot (not yet published).</summary>
    public void Queue(byte op, ulong id, ulong sector, params (uint Gref, byte First, byte Last)[] segments)
    {
        Span<byte> entry = Slot(_requestProducer++);
        entry.Clear();
        entry[0] = op;
        entry[1] = (byte)segments.Length;
        BinaryPrimitives.WriteUInt64LittleEndian(entry[8..], id);
        BinaryPrimitives.WriteUInt64LittleEndian(entry[16..], sector);
        for (int i = 0; i < segments.Length && i < XenBlockBackend.MaxSegments; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(entry[(24 + (i * 8))..], segments[i].Gref);
            entry[28 + (i * 8)] = segments[i].First;
            entry[29 + (i * 8)] = segments[i].Last;
        }
    }

    /// <summary>A BLKIF_OP_INDIRECT request whose segments are in the page granted as <paramref name="indirectGref"/>.</summary>
    public void QueueIndirect(byte op, ulong id, ulong sector, int segments, params uint[] indirectGrefs)
    {
        Span<byte> entry = Slot(_requestProducer++);
        entry.Clear();
        entry[0] = XenBlockBackend.OpIndirect;
        entry[1] = op;
        BinaryPrimitives.WriteUInt16LittleEndian(entry[2..], (ushort)segments);
        BinaryPrimitives.WriteUInt64LittleEndian(entry[8..], id);
        BinaryPrimitives.WriteUInt64LittleEndian(entry[16..], sector);
        for (int i = 0; i < indirectGrefs.Length && i < 8; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(entry[(28 + (i * 4))..], indirectGrefs[i]);
        }
    }

    /// <summary>Writes blkif_request_segments { gref, first_sect, last_sect } into the page at <paramref name="page"/>.</summary>
    public void WriteSegments(ulong page, params (uint Gref, byte First, byte Last)[] segments)
    {
        for (int i = 0; i < segments.Length; i++)
        {
            ulong at = page + (ulong)(i * XenBlockBackend.SegmentSize);
            Memory.Write(at, segments[i].Gref);
            Memory.Write(at + 4, segments[i].First);
            Memory.Write(at + 5, segments[i].Last);
        }
    }

    public void QueueDiscard(ulong id, ulong sector, ulong count)
    {
        Span<byte> entry = Slot(_requestProducer++);
        entry.Clear();
        entry[0] = XenBlockBackend.OpDiscard;
        BinaryPrimitives.WriteUInt64LittleEndian(entry[8..], id);
        BinaryPrimitives.WriteUInt64LittleEndian(entry[16..], sector);
        BinaryPrimitives.WriteUInt64LittleEndian(entry[24..], count);
    }

    /// <summary>Publishes the queued requests, notifies (EVTCHNOP_send) and lets the back end run one pass.</summary>
    public void Push()
    {
        Memory.Write<uint>(RingPage, _requestProducer);
        _guest.Send(Port);
        Backend.Process();
    }

    /// <summary>The responses published since the last call: (id, op, status).</summary>
    public List<(ulong Id, byte Op, short Status)> TakeResponses()
    {
        var responses = new List<(ulong, byte, short)>();
        uint producer = Memory.Read<uint>(RingPage + 8);
        if (producer - _responseConsumer > XenBlockBackend.RingEntries)
        {
            _responseConsumer = producer;   // scribbled indices (a fuzz round): nothing to read
        }

        while (_responseConsumer != producer)
        {
            Span<byte> entry = Slot(_responseConsumer++);
            responses.Add((BinaryPrimitives.ReadUInt64LittleEndian(entry), entry[8], BinaryPrimitives.ReadInt16LittleEndian(entry[10..])));
        }

        return responses;
    }

    public bool PortPending() => _guest.Pending(Port);

    public Span<byte> Slot(uint index) =>
        Memory.GetSpan(RingPage + XenBlockBackend.RingHeaderSize + ((index % XenBlockBackend.RingEntries) * XenBlockBackend.EntrySize), XenBlockBackend.EntrySize);

    public void Dispose()
    {
        Backend.Dispose();
        _guest.Dispose();
    }
}
