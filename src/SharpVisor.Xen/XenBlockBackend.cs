using System.Buffers.Binary;
using System.Globalization;

namespace SharpVisor.Xen;

/// <summary>
/// Dom0's blkback for one virtual block device (xen/include/public/io/blkif.h): the xenbus
/// directories of the pair, the state handshake (InitWait → the front end's Initialised →
/// Connected), and the blkif ring — requests read, write, flush and discard whose data moves by
/// grant copy between the guest's granted pages and the disk image. The ring is a hostile
/// guest's: each request is copied out of the shared page once and checked (segments, sector
/// ranges, grants) before anything is done; a bad request is answered BLKIF_RSP_ERROR, broken
/// ring indices or an unusable ring/port fail the device (one log line, state Closing) — never
/// the host. The handshake and the worker thread are <see cref="XenBackendDevice"/>'s.
/// </summary>
public sealed class XenBlockBackend : XenBackendDevice
{
    /// <summary>Xen's major number for xvd disks: xvda is 202:0 (device id 51712), xvdb 202:16, ...</summary>
    public const int XvdMajor = 202;
    public const int SectorSize = 512;
    public const int MaxSegments = 11;

    /// <summary>feature-max-indirect-segments: what one BLKIF_OP_INDIRECT request may carry (Linux's blkback offers 256).</summary>
    public const int MaxIndirectSegments = 256;

    /// <summary>struct blkif_request_segment { grant_ref_t gref; uint8_t first_sect, last_sect; uint16_t pad; }.</summary>
    public const int SegmentSize = 8;

    public const int RingEntries = 32;
    public const int RingHeaderSize = 64;
    public const int EntrySize = 112;

    public const byte OpRead = 0;
    public const byte OpWrite = 1;
    public const byte OpWriteBarrier = 2;
    public const byte OpFlushDiskCache = 3;
    public const byte OpDiscard = 5;
    public const byte OpIndirect = 6;

    public const short StatusOkay = 0;
    public const short StatusError = -1;
    public const short StatusNotSupported = -2;

    private const int VdiskReadOnly = 4;
    private const int PageSize = 4096;
    private const int ReqProdOffset = 0;
    private const int ReqEventOffset = 4;
    private const int RspProdOffset = 8;
    private const int RspEventOffset = 12;

    private readonly IXenDiskImage _image;
    private readonly XenBlkifRequests _requests;
    private EventChannel? _channel;
    private uint _ringRef;
    private ulong _ringPage;
    private uint _requestConsumer;
    private uint _responseProducer;

    /// <summary>Writes the device's XenStore directories (the toolstack's part) and enters InitWait.</summary>
    /// <param name="index">0 for xvda, 1 for xvdb, ... (at most 15).</param>
    public XenBlockBackend(XenDomain domain, XenStore store, GrantTable grants, IXenDiskImage image, int index, Action<string>? log = null)
        : base(domain, store, grants, "vbd", "blkback", DeviceIdOf(index), "xvd" + (char)('a' + index), log)
    {
        ArgumentNullException.ThrowIfNull(image);
        _image = image;
        _requests = new XenBlkifRequests(image, new Dom0Grants(grants), Counters, Log);
        string id = DeviceId.ToString(CultureInfo.InvariantCulture);
        Publish(
            [("virtual-device", id), ("device-type", "disk")],
            [
                ("removable", "0"), ("bootable", "1"), ("dev", Name), ("type", "file"), ("mode", image.ReadOnly ? "r" : "w"),
                ("device-type", "disk"), ("feature-flush-cache", "1"), ("feature-discard", image.ReadOnly ? "0" : "1"),
                ("discard-granularity", PageSize.ToString(CultureInfo.InvariantCulture)), ("discard-alignment", "0"),
                ("discard-secure", "0"), ("feature-persistent", "0"),
                ("feature-max-indirect-segments", MaxIndirectSegments.ToString(CultureInfo.InvariantCulture)),
            ]);
    }

    public long CapacitySectors => _requests.CapacitySectors;

    /// <summary>Maps the ring the front end granted and binds its port, then tells it the disk's geometry.</summary>
    protected override bool Connect()
    {
        string? order = ReadFrontend("ring-page-order");
        string? protocol = ReadFrontend("protocol");
        if (order is not null && order != "0")
        {
            Fail($"ring-page-order {order}: only one-page rings are offered");
            return false;
        }

        if (protocol is not null && protocol != "x86_64-abi")
        {
            Fail($"protocol '{protocol}' is not offered (x86_64-abi only)");
            return false;
        }

        if (ReadFrontendNumber("ring-ref") is not { } ringRef || ReadFrontendNumber("event-channel") is not { } port)
        {
            Fail("ring-ref or event-channel is missing or not a number");
            return false;
        }

        if (MapRing(ringRef, "ring-ref") is not { } page)
        {
            return false;
        }

        try
        {
            _channel = Domain.BindBackendPort(port, Wake);
        }
        catch (XenException e)
        {
            UnmapRing(ringRef);
            Fail($"event-channel {port}: {e.Message}");
            return false;
        }

        _ringRef = ringRef;
        _ringPage = page;
        _requestConsumer = 0;
        _responseProducer = 0;
        WriteBackend("sectors", CapacitySectors.ToString(CultureInfo.InvariantCulture));
        WriteBackend("info", (_image.ReadOnly ? VdiskReadOnly : 0).ToString(CultureInfo.InvariantCulture));
        WriteBackend("sector-size", SectorSize.ToString(CultureInfo.InvariantCulture));
        WriteBackend("physical-sector-size", SectorSize.ToString(CultureInfo.InvariantCulture));
        return true;
    }

    protected override void Disconnect()
    {
        if (_channel is not null)
        {
            Domain.UnbindBackendPort(_channel);
            _channel = null;
            _ringPage = 0;
            UnmapRing(_ringRef);
        }
    }

    protected override void Serve()
    {
        if (_channel is not null)
        {
            ServeRing();
        }
    }

    private static int DeviceIdOf(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(index, 15);
        return (XvdMajor << 8) | (index << 4);
    }

    /// <summary>
    /// The back half of ring.h: consume requests up to req_prod (never more than a ring ahead of
    /// our responses), answer each, push the responses, notify if the guest asked (rsp_event),
    /// and re-arm req_event before the final check for late requests.
    /// </summary>
    private void ServeRing()
    {
        int served = 0;
        bool notify = false;
        while (true)
        {
            Span<byte> ring = Memory.GetSpan(_ringPage, PageSize);
            uint producer = Volatile.Read(ref Index(ring, ReqProdOffset));
            if (producer - _responseProducer > RingEntries)
            {
                Fail($"req_prod {producer} is more than a ring ahead of rsp_prod {_responseProducer}");
                return;
            }

            while (_requestConsumer != producer)
            {
                int slot = (int)(_requestConsumer & (RingEntries - 1));
                byte[] request = _requests.Request;
                ring.Slice(RingHeaderSize + (slot * EntrySize), EntrySize).CopyTo(request);
                _requestConsumer++;
                ulong id = BinaryPrimitives.ReadUInt64LittleEndian(request.AsSpan(8));
                byte op = request[0];
                short status = _requests.Handle(op);
                Span<byte> response = ring.Slice(RingHeaderSize + ((int)(_responseProducer & (RingEntries - 1)) * EntrySize), 16);
                BinaryPrimitives.WriteUInt64LittleEndian(response, id);

                // An indirect request is answered with the operation it carried, as blkfront checks.
                response[8] = op == OpIndirect ? request[1] : op;
                BinaryPrimitives.WriteInt16LittleEndian(response[10..], status);
                _responseProducer++;
                served++;
            }

            // RING_PUSH_RESPONSES_AND_CHECK_NOTIFY
            uint old = Volatile.Read(ref Index(ring, RspProdOffset));
            Volatile.Write(ref Index(ring, RspProdOffset), _responseProducer);
            Interlocked.MemoryBarrier();
            uint wanted = Volatile.Read(ref Index(ring, RspEventOffset));
            notify |= _responseProducer - wanted < _responseProducer - old;

            // RING_FINAL_CHECK_FOR_REQUESTS
            if (Volatile.Read(ref Index(ring, ReqProdOffset)) != _requestConsumer)
            {
                if (served >= RingEntries * 8)
                {
                    Wake();   // a busy guest: let the thread look up (dispose) and come back
                    break;
                }

                continue;
            }

            Volatile.Write(ref Index(ring, ReqEventOffset), _requestConsumer + 1);
            Interlocked.MemoryBarrier();
            if (Volatile.Read(ref Index(ring, ReqProdOffset)) == _requestConsumer)
            {
                break;
            }
        }

        if (notify && _channel is not null)
        {
            Counters.Increment("notifications");
            Domain.NotifyGuest(_channel);
        }
    }

    private static ref uint Index(Span<byte> ring, int offset) =>
        ref System.Runtime.CompilerServices.Unsafe.As<byte, uint>(ref ring[offset]);

    /// <summary>Dom0's copies: through the guest's own grant table, for domain 0.</summary>
    private sealed class Dom0Grants(GrantTable grants) : IXenGrantCopies
    {
        public void CopyFrom(uint reference, int offset, Span<byte> destination) => grants.CopyFrom(0, reference, offset, destination);

        public void CopyTo(uint reference, int offset, ReadOnlySpan<byte> source) => grants.CopyTo(0, reference, offset, source);
    }
}
