using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Globalization;

namespace SharpVisor.Xen;

/// <summary>
/// Dom0's netback for one vif (xen/include/public/io/netif.h) in copy mode: the guest's transmit
/// requests (chains of granted fragments) are grant-copied out and sent to the host's port; frames
/// from the port are grant-copied into the receive buffers the guest posted (feature-rx-copy).
/// One event channel for both rings; one-page rings of 256 slots. Transmit: checksums the guest
/// left blank (NETTXF_csum_blank, which Linux's netfront always uses) are completed here, large
/// TCPv4/TCPv6 packets (GSO) go to the port whole. Receive: what the front end takes (partial
/// checksums, large TCP packets over several slots with GSO extra info) is asked of the port,
/// the rest completed here. Requests are copied out of the shared page once and checked: a bad
/// fragment drops its packet (NETIF_RSP_ERROR), a malformed chain or broken ring indices fail
/// the device.
/// </summary>
public sealed class XenNetBackend : XenBackendDevice
{
    public const int RingEntries = 256;
    public const int RingHeaderSize = 64;
    public const int TxEntrySize = 12;
    public const int RxEntrySize = 8;
    public const int MaxTxSlots = 18;
    public const int MaxFrame = 65535;

    /// <summary>The largest frame from the port: a 64 KiB TCP packet and its Ethernet header (netfront takes up to 18 slots).</summary>
    public const int MaxReceiveFrame = 65536 + 256;

    public const ushort TxChecksumBlank = 1;
    public const ushort TxDataValidated = 2;
    public const ushort TxMoreData = 4;
    public const ushort TxExtraInfo = 8;
    private const byte ExtraFlagMore = 1;
    private const byte ExtraTypeGso = 1;
    private const byte GsoTypeTcpv4 = 1;
    private const byte GsoTypeTcpv6 = 2;

    public const ushort RxChecksumBlank = 1;
    public const ushort RxDataValidated = 2;
    public const ushort RxMoreData = 4;
    public const ushort RxExtraInfo = 8;

    /// <summary>netfront's limit on the data slots of one received packet (XEN_NETIF_NR_SLOTS_MIN).</summary>
    public const int MaxRxSlots = 18;

    public const short ResponseOkay = 0;
    public const short ResponseError = -1;
    public const short ResponseDropped = -2;
    public const short ResponseNull = 1;

    private const int PageSize = 4096;
    private const int ReqProdOffset = 0;
    private const int ReqEventOffset = 4;
    private const int RspProdOffset = 8;
    private const int RspEventOffset = 12;
    private const int EthernetHeader = 14;
    private const int MaxQueuedFrames = 256;
    private const int MaxLoggedErrors = 10;

    private readonly IXenPacketPort _port;
    private readonly ConcurrentQueue<(byte[] Frame, XenSegmentationOffload Offload)> _received = new();
    private readonly byte[] _frame = new byte[MaxFrame];
    private readonly (uint Gref, ushort Offset, ushort Flags, ushort Id, ushort Size)[] _slots = new (uint, ushort, ushort, ushort, ushort)[MaxTxSlots];
    private Thread? _reader;
    private volatile bool _stopping;
    private EventChannel? _channel;
    private uint _txRef;
    private uint _rxRef;
    private ulong _txPage;
    private ulong _rxPage;
    private uint _txRequestConsumer;
    private uint _txResponseProducer;
    private uint _rxRequestConsumer;
    private uint _rxResponseProducer;

    /// <summary>What the connected front end takes on receive (and the port agreed to), and whether it takes several slots per packet.</summary>
    private XenReceiveOffloads _rxOffloads;
    private bool _rxIpv6Checksum;
    private bool _rxScatter;

    /// <summary>The current tx packet's GSO extra info (gso_size, gso_type), copied out of its slot; size 0: none.</summary>
    private (ushort Size, byte Type) _gso;

    /// <summary>Writes the vif's XenStore directories and enters InitWait.</summary>
    /// <param name="index">0 for the first vif (eth0 in the guest), 1, ...</param>
    public XenNetBackend(XenDomain domain, XenStore store, GrantTable grants, IXenPacketPort port, ReadOnlySpan<byte> mac, int index, Action<string>? log = null)
        : base(domain, store, grants, "vif", "netback", index, "vif" + index.ToString(CultureInfo.InvariantCulture), log)
    {
        ArgumentNullException.ThrowIfNull(port);
        if (mac.Length != 6)
        {
            throw new ArgumentException("a MAC address is 6 bytes", nameof(mac));
        }

        _port = port;
        Mac = string.Join(':', mac.ToArray().Select(b => b.ToString("x2", CultureInfo.InvariantCulture)));
        string id = index.ToString(CultureInfo.InvariantCulture);
        Publish(
            [("handle", id), ("mac", Mac)],
            [
                ("handle", id), ("mac", Mac), ("type", "vif"),
                ("feature-rx-copy", "1"), ("feature-rx-flip", "0"), ("feature-sg", "1"),
                ("feature-gso-tcpv4", "1"), ("feature-gso-tcpv6", "1"), ("feature-ipv6-csum-offload", "1"),
                ("feature-split-event-channels", "0"), ("multi-queue-max-queues", "1"),
            ]);
    }

    public string Mac { get; }

    /// <summary>Starts the worker and the thread that takes frames from the port.</summary>
    public void StartReceiving()
    {
        Start();
        _reader ??= new Thread(ReadPort) { IsBackground = true, Name = $"xen-netback-{Name}-rx" };
        if (!_reader.IsAlive)
        {
            _reader.Start();
        }
    }

    /// <summary>Hands a complete frame from the host to the guest (the port's reader does this; tests call it).</summary>
    public void Deliver(ReadOnlySpan<byte> frame) => Deliver(frame, default);

    /// <summary>Hands a frame from the host to the guest with what is left to do on it: a partial checksum, a large TCP packet.</summary>
    public void Deliver(ReadOnlySpan<byte> frame, XenSegmentationOffload offload)
    {
        if (_received.Count >= MaxQueuedFrames)
        {
            Counters.Increment("rx-dropped-queue-full");
            return;
        }

        _received.Enqueue((frame.ToArray(), offload));
        Wake();
    }

    protected override bool Connect()
    {
        if (ReadFrontendNumber("tx-ring-ref") is not { } txRef || ReadFrontendNumber("rx-ring-ref") is not { } rxRef
            || ReadFrontendNumber("event-channel") is not { } port)
        {
            Fail("tx-ring-ref, rx-ring-ref or event-channel is missing or not a number (split event channels and multiple queues are not offered)");
            return false;
        }

        if (ReadFrontend("request-rx-copy") != "1")
        {
            Fail("the front end did not ask for rx-copy (page flipping is not offered)");
            return false;
        }

        if (txRef == rxRef)
        {
            Fail($"tx and rx rings share grant {txRef}");
            return false;
        }

        if (MapRing(txRef, "tx-ring-ref") is not { } txPage)
        {
            return false;
        }

        if (MapRing(rxRef, "rx-ring-ref") is not { } rxPage)
        {
            UnmapRing(txRef);
            return false;
        }

        try
        {
            _channel = Domain.BindBackendPort(port, Wake);
        }
        catch (XenException e)
        {
            UnmapRing(txRef);
            UnmapRing(rxRef);
            Fail($"event-channel {port}: {e.Message}");
            return false;
        }

        // Receive offloads as far as the front end takes them (netfront: all of them); the port
        // then hands over partial checksums and large TCP packets instead of doing that work.
        bool checksum = ReadFrontend("feature-no-csum-offload") != "1";
        _rxScatter = ReadFrontend("feature-sg") == "1";
        _rxIpv6Checksum = checksum && ReadFrontend("feature-ipv6-csum-offload") == "1";
        XenReceiveOffloads offloads = checksum ? XenReceiveOffloads.Checksum : XenReceiveOffloads.None;
        if (checksum && _rxScatter && ReadFrontend("feature-gso-tcpv4") == "1")
        {
            offloads |= XenReceiveOffloads.TcpV4;
        }

        if (_rxIpv6Checksum && _rxScatter && ReadFrontend("feature-gso-tcpv6") == "1")
        {
            offloads |= XenReceiveOffloads.TcpV6;
        }

        _rxOffloads = _port.SetReceiveOffloads(offloads) ? offloads : XenReceiveOffloads.None;
        _txRef = txRef;
        _rxRef = rxRef;
        _txPage = txPage;
        _rxPage = rxPage;
        _txRequestConsumer = _txResponseProducer = _rxRequestConsumer = _rxResponseProducer = 0;
        return true;
    }

    protected override void Disconnect()
    {
        _rxOffloads = XenReceiveOffloads.None;
        _port.SetReceiveOffloads(XenReceiveOffloads.None);
        if (_channel is not null)
        {
            Domain.UnbindBackendPort(_channel);
            _channel = null;
            UnmapRing(_txRef);
            UnmapRing(_rxRef);
            _txPage = _rxPage = 0;
        }
    }

    protected override void Serve()
    {
        if (_channel is null)
        {
            return;
        }

        bool notify = ServeTransmit();
        if (State == XenbusState.Connected && _channel is not null)
        {
            notify |= ServeReceive();
        }

        if (notify && _channel is not null)
        {
            Counters.Increment("notifications");
            Domain.NotifyGuest(_channel);
        }
    }

    protected override void OnDisposed()
    {
        _stopping = true;
        if (_reader is { IsAlive: true })
        {
            _reader.Join();
        }
    }

    private void ReadPort()
    {
        byte[] buffer = new byte[MaxReceiveFrame];
        while (!_stopping)
        {
            try
            {
                if (!_port.WaitReadable(100))
                {
                    continue;
                }

                int n;
                while (!_stopping && (n = _port.Receive(buffer, out XenSegmentationOffload offload)) > 0)
                {
                    Deliver(buffer.AsSpan(0, n), offload);
                }
            }
            catch (IOException e)
            {
                Log($"port: {e.Message}; receiving stops");
                return;
            }
        }
    }

    /// <summary>The guest's transmit ring: each packet's chain of slots, checked, copied, sent; one response per slot.</summary>
    private bool ServeTransmit()
    {
        bool notify = false;
        int served = 0;
        while (true)
        {
            Span<byte> ring = Memory.GetSpan(_txPage, PageSize);
            uint producer = Volatile.Read(ref Index(ring, ReqProdOffset));
            if (producer - _txResponseProducer > RingEntries)
            {
                Fail($"tx req_prod {producer} is more than a ring ahead of rsp_prod {_txResponseProducer}");
                return false;
            }

            while (_txRequestConsumer != producer)
            {
                if (!TakePacket(ring, producer))
                {
                    return false;
                }

                served++;
            }

            uint old = Volatile.Read(ref Index(ring, RspProdOffset));
            Volatile.Write(ref Index(ring, RspProdOffset), _txResponseProducer);
            Interlocked.MemoryBarrier();
            notify |= _txResponseProducer - Volatile.Read(ref Index(ring, RspEventOffset)) < _txResponseProducer - old;
            if (Volatile.Read(ref Index(ring, ReqProdOffset)) != _txRequestConsumer)
            {
                if (served >= RingEntries)
                {
                    Wake();
                    return notify;
                }

                continue;
            }

            Volatile.Write(ref Index(ring, ReqEventOffset), _txRequestConsumer + 1);
            Interlocked.MemoryBarrier();
            if (Volatile.Read(ref Index(ring, ReqProdOffset)) == _txRequestConsumer)
            {
                return notify;
            }
        }
    }

    /// <summary>
    /// One packet from the tx ring: its first slot (size = the whole packet), extra-info slots,
    /// and fragments while NETTXF_more_data; false when the chain is malformed (the device fails).
    /// </summary>
    private bool TakePacket(Span<byte> ring, uint producer)
    {
        int count = 0;
        int extras = 0;
        uint index = _txRequestConsumer;
        bool more = true;
        bool extra = false;
        _gso = (0, 0);
        while (more || extra)
        {
            if (index == producer)
            {
                Fail($"a tx chain ends at req_prod {producer} in the middle of a packet");
                return false;
            }

            Span<byte> slot = ring.Slice(RingHeaderSize + ((int)(index & (RingEntries - 1)) * TxEntrySize), TxEntrySize);
            index++;
            if (extra)
            {
                // struct netif_extra_info { uint8 type; uint8 flags; union { struct { uint16 size; uint8 type; uint8 pad; uint16 features; } gso; ... } }:
                // GSO is kept (checked when the packet is sent), the other types are skipped; all are answered NETIF_RSP_NULL.
                if (slot[0] == ExtraTypeGso)
                {
                    _gso = (BinaryPrimitives.ReadUInt16LittleEndian(slot[2..]), slot[4]);
                }

                extra = (slot[1] & ExtraFlagMore) != 0;
                extras++;
                if (extras > MaxTxSlots)
                {
                    Fail("a tx packet has too many extra-info slots");
                    return false;
                }

                continue;
            }

            if (count == MaxTxSlots)
            {
                Fail($"a tx packet spans more than {MaxTxSlots} slots");
                return false;
            }

            _slots[count++] = (
                BinaryPrimitives.ReadUInt32LittleEndian(slot),
                BinaryPrimitives.ReadUInt16LittleEndian(slot[4..]),
                BinaryPrimitives.ReadUInt16LittleEndian(slot[6..]),
                BinaryPrimitives.ReadUInt16LittleEndian(slot[8..]),
                BinaryPrimitives.ReadUInt16LittleEndian(slot[10..]));
            ushort flags = _slots[count - 1].Flags;
            more = (flags & TxMoreData) != 0;
            extra = count == 1 && (flags & TxExtraInfo) != 0;
        }

        _txRequestConsumer = index;
        short status = Transmit(count);

        // One response per slot, in ring order: the first request, its extra-info slots, the fragments.
        Respond(ring, _slots[0].Id, status);
        for (int e = 0; e < extras; e++)
        {
            Respond(ring, 0, ResponseNull);
        }

        for (int i = 1; i < count; i++)
        {
            Respond(ring, _slots[i].Id, status);
        }

        return true;
    }

    private void Respond(Span<byte> ring, ushort id, short status)
    {
        Span<byte> response = ring.Slice(RingHeaderSize + ((int)(_txResponseProducer & (RingEntries - 1)) * TxEntrySize), 4);
        BinaryPrimitives.WriteUInt16LittleEndian(response, id);
        BinaryPrimitives.WriteInt16LittleEndian(response[2..], status);
        _txResponseProducer++;
    }

    /// <summary>Checks the chain's sizes, gathers the fragments by grant copy, completes a blank checksum, sends.</summary>
    private short Transmit(int count)
    {
        Counters.Increment("tx-packets");
        int total = _slots[0].Size;
        int rest = 0;
        for (int i = 1; i < count; i++)
        {
            rest += _slots[i].Size;
        }

        if (total < EthernetHeader || rest > total)
        {
            return Drop($"tx packet of {total} bytes with {rest} bytes in its fragments");
        }

        int at = 0;
        try
        {
            for (int i = 0; i < count; i++)
            {
                int size = i == 0 ? total - rest : _slots[i].Size;
                Grants.CopyFrom(0, _slots[i].Gref, _slots[i].Offset, _frame.AsSpan(at, size));
                at += size;
            }
        }
        catch (GrantTableException e)
        {
            return Drop($"tx grant: {e.Message}");
        }

        Span<byte> frame = _frame.AsSpan(0, total);
        if (_gso.Size != 0)
        {
            return TransmitLarge(frame);
        }

        if ((_slots[0].Flags & TxChecksumBlank) != 0 && !XenPacketChecksum.TryComplete(frame))
        {
            return Drop("tx packet with a blank checksum that is not TCP or UDP over IPv4/IPv6");
        }

        if (!_port.Send(frame))
        {
            Counters.Increment("tx-dropped");
            return ResponseOkay;   // the wire dropped it: the guest's request itself was fine
        }

        Counters.Add("tx-bytes", total);
        return ResponseOkay;
    }

    /// <summary>
    /// A packet with GSO extra info (feature-gso-tcpv4, feature-gso-tcpv6): it must be TCP over
    /// IPv4 or IPv6 as its GSO type says, with a blank checksum and its headers inside the
    /// packet; the host's port segments it. Anything else drops it.
    /// </summary>
    private short TransmitLarge(Span<byte> packet)
    {
        if (_gso.Type is not (GsoTypeTcpv4 or GsoTypeTcpv6))
        {
            return Drop($"tx GSO type {_gso.Type} is not offered (TCPv4 and TCPv6 only)");
        }

        if ((_slots[0].Flags & TxChecksumBlank) == 0)
        {
            return Drop("a tx GSO packet without a blank checksum");
        }

        bool ipv6 = _gso.Type == GsoTypeTcpv6;
        int tcp;
        int headers;
        if (ipv6 ? !XenPacketChecksum.TryLocateTcpv6(packet, out tcp, out headers) : !XenPacketChecksum.TryLocateTcpv4(packet, out tcp, out headers))
        {
            return Drop($"a tx GSO packet that is not TCP over {(ipv6 ? "IPv6" : "IPv4")}");
        }

        Counters.Increment("tx-gso-packets");
        if (!_port.Send(packet, new XenSegmentationOffload(_gso.Size, (ushort)headers, (ushort)tcp, 16, ipv6)))
        {
            Counters.Increment("tx-dropped");
            return ResponseOkay;
        }

        Counters.Add("tx-bytes", packet.Length);
        return ResponseOkay;
    }

    /// <summary>
    /// Frames waiting for the guest go into the rx buffers it posted: a page-sized piece per buffer
    /// (offset 0), and for a large TCP packet the GSO extra info in the slot after the first, as
    /// Linux's netback lays them out. A frame waits until the guest has posted all the buffers it needs.
    /// </summary>
    private bool ServeReceive()
    {
        if (_received.IsEmpty)
        {
            return false;
        }

        Span<byte> ring = Memory.GetSpan(_rxPage, PageSize);
        int moved = 0;
        while (_received.TryPeek(out (byte[] Frame, XenSegmentationOffload Offload) item))
        {
            uint producer = Volatile.Read(ref Index(ring, ReqProdOffset));
            if (producer - _rxResponseProducer > RingEntries)
            {
                Fail($"rx req_prod {producer} is more than a ring ahead of rsp_prod {_rxResponseProducer}");
                return false;
            }

            if (!PrepareReceive(item.Frame, item.Offload, out int dataSlots, out bool gso, out bool partial))
            {
                _received.TryDequeue(out _);
                continue;
            }

            int needed = dataSlots + (gso ? 1 : 0);
            if (producer - _rxRequestConsumer < (uint)needed)
            {
                // Not enough buffers: ask to be told when the guest posts them, then look once more.
                Volatile.Write(ref Index(ring, ReqEventOffset), _rxRequestConsumer + (uint)needed);
                Interlocked.MemoryBarrier();
                if (Volatile.Read(ref Index(ring, ReqProdOffset)) - _rxRequestConsumer < (uint)needed)
                {
                    break;
                }

                continue;
            }

            _received.TryDequeue(out _);
            WriteReceived(ring, item.Frame, item.Offload, dataSlots, gso, partial);
            if (++moved >= RingEntries)
            {
                Wake();
                break;
            }
        }

        uint old = Volatile.Read(ref Index(ring, RspProdOffset));
        Volatile.Write(ref Index(ring, RspProdOffset), _rxResponseProducer);
        Interlocked.MemoryBarrier();
        return _rxResponseProducer - Volatile.Read(ref Index(ring, RspEventOffset)) < _rxResponseProducer - old;
    }

    /// <summary>
    /// How a frame goes to this front end: its data slots, GSO extra info or not, a partial
    /// checksum left to the guest or not. A partial checksum the front end does not take is
    /// completed here; false (the frame is dropped, counted) when it cannot go at all.
    /// </summary>
    private bool PrepareReceive(byte[] frame, XenSegmentationOffload offload, out int dataSlots, out bool gso, out bool partial)
    {
        gso = offload.SegmentSize != 0;
        partial = offload.IsPartial;
        dataSlots = Math.Max(1, (frame.Length + PageSize - 1) / PageSize);
        if (gso && (_rxOffloads & (offload.Ipv6 ? XenReceiveOffloads.TcpV6 : XenReceiveOffloads.TcpV4)) == 0)
        {
            // The port handed over a large packet the front end did not ask for (it reconnected without GSO).
            Counters.Increment("rx-dropped-offload");
            return false;
        }

        if (partial && !gso && ((_rxOffloads & XenReceiveOffloads.Checksum) == 0 || (offload.Ipv6 && !_rxIpv6Checksum)))
        {
            if (!XenPacketChecksum.TryComplete(frame))
            {
                Counters.Increment("rx-dropped-offload");
                return false;
            }

            partial = false;
        }

        if (dataSlots > (_rxScatter ? MaxRxSlots : 1))
        {
            Drop($"rx frame of {frame.Length} bytes needs {dataSlots} slots{(_rxScatter ? "" : " and the front end has no feature-sg")}");
            Counters.Increment("rx-dropped-oversize");
            return false;
        }

        return true;
    }

    /// <summary>Copies one frame into the next buffers and writes its responses: data slot 0, the GSO extra info, the other data slots.</summary>
    private void WriteReceived(Span<byte> ring, byte[] frame, XenSegmentationOffload offload, int dataSlots, bool gso, bool partial)
    {
        int at = 0;
        bool failed = false;
        for (int slotIndex = 0; slotIndex < dataSlots + (gso ? 1 : 0); slotIndex++)
        {
            Span<byte> request = ring.Slice(RingHeaderSize + ((int)(_rxRequestConsumer & (RingEntries - 1)) * RxEntrySize), RxEntrySize);
            ushort id = BinaryPrimitives.ReadUInt16LittleEndian(request);
            uint gref = BinaryPrimitives.ReadUInt32LittleEndian(request[4..]);
            _rxRequestConsumer++;
            Span<byte> response = ring.Slice(RingHeaderSize + ((int)(_rxResponseProducer & (RingEntries - 1)) * RxEntrySize), RxEntrySize);
            _rxResponseProducer++;
            if (gso && slotIndex == 1)
            {
                // struct netif_extra_info over the response: type GSO, no more extras, gso.size, gso.type, pad, features.
                response.Clear();
                response[0] = ExtraTypeGso;
                BinaryPrimitives.WriteUInt16LittleEndian(response[2..], offload.SegmentSize);
                response[4] = offload.Ipv6 ? GsoTypeTcpv6 : GsoTypeTcpv4;
                continue;
            }

            int size = Math.Min(PageSize, frame.Length - at);
            short status;
            try
            {
                Grants.CopyTo(0, gref, 0, frame.AsSpan(at, size));
                status = (short)size;
            }
            catch (GrantTableException e)
            {
                // The rest of the packet still goes out (flags keep the chain whole); netfront drops it on this status.
                status = Drop($"rx grant: {e.Message}");
                failed = true;
            }

            at += size;
            ushort flags = at < frame.Length ? RxMoreData : (ushort)0;
            if (slotIndex == 0)
            {
                flags |= partial ? (ushort)(RxChecksumBlank | RxDataValidated) : (ushort)0;
                flags |= gso ? RxExtraInfo : (ushort)0;
            }

            BinaryPrimitives.WriteUInt16LittleEndian(response, id);
            BinaryPrimitives.WriteUInt16LittleEndian(response[2..], 0);   // offset
            BinaryPrimitives.WriteUInt16LittleEndian(response[4..], flags);
            BinaryPrimitives.WriteInt16LittleEndian(response[6..], status);
        }

        if (!failed)
        {
            Counters.Increment("rx-packets");
            Counters.Add("rx-bytes", frame.Length);
            if (gso)
            {
                Counters.Increment("rx-gso-packets");
            }
        }
    }

    private short Drop(string reason)
    {
        Counters.Increment("errors");
        if (Counters["errors"] <= MaxLoggedErrors)
        {
            Log($"packet dropped: {reason}");
        }

        return ResponseError;
    }

    private static ref uint Index(Span<byte> ring, int offset) =>
        ref System.Runtime.CompilerServices.Unsafe.As<byte, uint>(ref ring[offset]);
}
