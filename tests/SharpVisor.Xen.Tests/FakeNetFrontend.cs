using System.Buffers.Binary;
using System.Globalization;

namespace SharpVisor.Xen.Tests;

/// <summary>A guest's netfront for in-process netback tests: the handshake, tx requests and rx buffers in the shared rings.</summary>
internal sealed class FakeNetFrontend : IDisposable
{
    public const ulong TxRing = 0x30000;
    public const ulong RxRing = 0x31000;
    public const uint TxRef = 8;
    public const uint RxRef = 7;

    private uint _txProducer;
    private uint _txConsumer;
    private uint _rxProducer;
    private uint _rxConsumer;

    public FakeNetFrontend()
    {
        Backend = new XenNetBackend(Guest.Xen, Guest.Store, Guest.Grants, Port, [6, 0, 10, 0, 0, 9], 0, Log.Add);
    }

    public FakeXenGuest Guest { get; } = new();

    public FakePacketPort Port { get; } = new();

    public XenNetBackend Backend { get; }

    public List<string> Log { get; } = [];

    public int EventPort { get; private set; }

    /// <summary>What netfront's talk_to_netback and xennet_connect do: rings, a port, the keys, Connected.</summary>
    public void Connect()
    {
        foreach (ulong ring in new[] { TxRing, RxRing })
        {
            Guest.Memory.Fill(ring, 4096, 0);
            Guest.Memory.Write<uint>(ring + 4, 1);
            Guest.Memory.Write<uint>(ring + 12, 1);
        }

        _txProducer = _txConsumer = _rxProducer = _rxConsumer = 0;
        Guest.Grant(TxRef, TxRing >> 12, readOnly: false);
        Guest.Grant(RxRef, RxRing >> 12, readOnly: false);
        if (EventPort != 0)
        {
            Guest.Close(EventPort);
        }

        EventPort = Guest.AllocateUnboundForDom0();
        Write("tx-ring-ref", TxRef.ToString(CultureInfo.InvariantCulture));
        Write("rx-ring-ref", RxRef.ToString(CultureInfo.InvariantCulture));
        Write("event-channel", EventPort.ToString(CultureInfo.InvariantCulture));
        Write("request-rx-copy", "1");
        Write("state", "4");
        Backend.Process();
    }

    public void Write(string key, string value) => Guest.Store.Write(Guest.Xen.DomainId, $"{Backend.FrontendPath}/{key}", value);

    public string ReadBackend(string key) => System.Text.Encoding.UTF8.GetString(Guest.Store.Read(Guest.Xen.DomainId, 0, $"{Backend.BackendPath}/{key}"));

    /// <summary>Queues one tx slot (not yet published).</summary>
    public void QueueTx(uint gref, ushort offset, ushort flags, ushort id, ushort size)
    {
        Span<byte> slot = TxSlot(_txProducer++);
        BinaryPrimitives.WriteUInt32LittleEndian(slot, gref);
        BinaryPrimitives.WriteUInt16LittleEndian(slot[4..], offset);
        BinaryPrimitives.WriteUInt16LittleEndian(slot[6..], flags);
        BinaryPrimitives.WriteUInt16LittleEndian(slot[8..], id);
        BinaryPrimitives.WriteUInt16LittleEndian(slot[10..], size);
    }

    /// <summary>Posts one rx buffer (not yet published).</summary>
    public void PostRx(ushort id, uint gref)
    {
        Span<byte> slot = RxSlot(_rxProducer++);
        BinaryPrimitives.WriteUInt16LittleEndian(slot, id);
        BinaryPrimitives.WriteUInt32LittleEndian(slot[4..], gref);
    }

    /// <summary>Publishes both rings, notifies, lets the back end run a pass.</summary>
    public void Push()
    {
        Guest.Memory.Write<uint>(TxRing, _txProducer);
        Guest.Memory.Write<uint>(RxRing, _rxProducer);
        Guest.Send(EventPort);
        Backend.Process();
    }

    public List<(ushort Id, short Status)> TakeTxResponses()
    {
        var responses = new List<(ushort, short)>();
        uint producer = Guest.Memory.Read<uint>(TxRing + 8);
        if (producer - _txConsumer > XenNetBackend.RingEntries)
        {
            _txConsumer = producer;   // scribbled indices (a fuzz round): nothing to read
        }

        while (_txConsumer != producer)
        {
            Span<byte> slot = TxSlot(_txConsumer++);
            responses.Add((BinaryPrimitives.ReadUInt16LittleEndian(slot), BinaryPrimitives.ReadInt16LittleEndian(slot[2..])));
        }

        return responses;
    }

    public List<(ushort Id, ushort Offset, short Status)> TakeRxResponses()
    {
        var responses = new List<(ushort, ushort, short)>();
        uint producer = Guest.Memory.Read<uint>(RxRing + 8);
        if (producer - _rxConsumer > XenNetBackend.RingEntries)
        {
            _rxConsumer = producer;   // scribbled indices (a fuzz round): nothing to read
        }

        while (_rxConsumer != producer)
        {
            Span<byte> slot = RxSlot(_rxConsumer++);
            responses.Add((BinaryPrimitives.ReadUInt16LittleEndian(slot), BinaryPrimitives.ReadUInt16LittleEndian(slot[2..]), BinaryPrimitives.ReadInt16LittleEndian(slot[6..])));
        }

        return responses;
    }

    public uint TxProducer => _txProducer;

    public Span<byte> TxSlot(uint index) =>
        Guest.Memory.GetSpan(TxRing + XenNetBackend.RingHeaderSize + ((index % XenNetBackend.RingEntries) * XenNetBackend.TxEntrySize), XenNetBackend.TxEntrySize);

    public Span<byte> RxSlot(uint index) =>
        Guest.Memory.GetSpan(RxRing + XenNetBackend.RingHeaderSize + ((index % XenNetBackend.RingEntries) * XenNetBackend.RxEntrySize), XenNetBackend.RxEntrySize);

    public void Dispose()
    {
        Backend.Dispose();
        Guest.Dispose();
    }
}
