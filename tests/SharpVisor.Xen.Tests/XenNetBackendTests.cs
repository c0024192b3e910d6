using System.Buffers.Binary;

namespace SharpVisor.Xen.Tests;

public sealed class XenNetBackendTests : IDisposable
{
    private const ulong PageA = 0x40000;
    private const ulong PageB = 0x41000;
    private const ulong PageC = 0x42000;
    private const ulong PageD = 0x43000;

    private readonly FakeNetFrontend _front = new();

    public void Dispose() => _front.Dispose();

    [Fact]
    public void XenStoreHoldsTheVifAndTheHandshakeConnects()
    {
        Assert.Equal("/local/domain/1/device/vif/0", _front.Backend.FrontendPath);
        Assert.Equal("06:00:0a:00:00:09", _front.Guest.Store.TryReadString(_front.Backend.FrontendPath + "/mac"));
        Assert.Equal("1", _front.ReadBackend("feature-rx-copy"));
        Assert.Equal("2", _front.ReadBackend("state"));
        _front.Connect();
        Assert.Equal("4", _front.ReadBackend("state"));
        Assert.Equal(EventChannelState.Interdomain, _front.Guest.Xen.GetChannel(_front.EventPort)!.State);
    }

    [Fact]
    public void ATransmittedChainIsGatheredFromItsGrantsAndSent()
    {
        _front.Connect();
        byte[] packet = Enumerable.Range(0, 100).Select(i => (byte)(i + 1)).ToArray();
        _front.Guest.Memory.Write(PageA + 4000, packet.AsSpan(0, 40));
        _front.Guest.Memory.Write(PageB, packet.AsSpan(40));
        _front.Guest.Grant(9, PageA >> 12, readOnly: true);
        _front.Guest.Grant(10, PageB >> 12, readOnly: true);
        _front.QueueTx(9, 4000, XenNetBackend.TxMoreData, 21, 100);   // size: the whole packet
        _front.QueueTx(10, 0, 0, 22, 60);
        _front.Push();
        Assert.Equal([(21, 0), (22, 0)], _front.TakeTxResponses().Select(r => ((int)r.Id, (int)r.Status)));
        Assert.Equal(packet, Assert.Single(_front.Port.Sent));
        Assert.True(_front.Guest.Pending(_front.EventPort));
    }

    [Fact]
    public void ReceivedFramesGoIntoPostedBuffersAndWaitForMore()
    {
        _front.Connect();
        _front.Guest.Grant(11, PageA >> 12, readOnly: false);
        _front.Guest.Grant(12, PageB >> 12, readOnly: true);
        _front.PostRx(5, 11);
        _front.PostRx(6, 12);                                         // read-only: that frame is lost
        _front.Push();
        _front.Backend.Deliver("first frame...."u8);
        _front.Backend.Deliver("second frame..."u8);
        _front.Backend.Deliver("third frame...."u8);
        _front.Backend.Process();
        Assert.Equal([(5, 0, 15), (6, 0, -1)], _front.TakeRxResponses().Select(r => ((int)r.Id, (int)r.Offset, (int)r.Status)));
        Assert.Equal("first frame...."u8.ToArray(), _front.Guest.Memory.GetSpan(PageA, 15).ToArray());

        // The third waits for a buffer; posting one (and notifying) delivers it.
        Assert.Empty(_front.TakeRxResponses());
        _front.Guest.Grant(12, PageB >> 12, readOnly: false);
        _front.PostRx(7, 12);
        _front.Push();
        Assert.Equal([(7, 0, 15)], _front.TakeRxResponses().Select(r => ((int)r.Id, (int)r.Offset, (int)r.Status)));
        Assert.Equal("third frame...."u8.ToArray(), _front.Guest.Memory.GetSpan(PageB, 15).ToArray());
    }

    [Fact]
    public void BadTransmitsAreDroppedAndAMalformedChainFailsTheDevice()
    {
        _front.Connect();
        _front.Guest.Grant(9, PageA >> 12, readOnly: true);
        _front.QueueTx(77, 0, 0, 1, 60);                              // never granted
        _front.QueueTx(9, 4090, 0, 2, 60);                            // leaves the page
        _front.QueueTx(9, 0, 0, 3, 10);                               // shorter than an Ethernet header
        _front.QueueTx(9, 0, XenNetBackend.TxMoreData, 4, 20);        // fragments larger than the packet
        _front.QueueTx(9, 0, 0, 5, 30);
        _front.QueueTx(9, 0, XenNetBackend.TxExtraInfo, 6, 60);       // an extra-info slot follows: NULL
        _front.QueueTx(0, 0, 0, 0, 0);
        _front.Push();
        Assert.Equal([(1, -1), (2, -1), (3, -1), (4, -1), (5, -1), (6, 0), (0, 1)], _front.TakeTxResponses().Select(r => ((int)r.Id, (int)r.Status)));
        Assert.Single(_front.Port.Sent);
        Assert.False(_front.Backend.Failed);

        _front.QueueTx(9, 0, XenNetBackend.TxMoreData, 8, 60);        // the chain ends at req_prod
        _front.Push();
        Assert.True(_front.Backend.Failed);
        Assert.Equal("5", _front.ReadBackend("state"));
        Assert.Single(_front.Log, l => l.Contains("the device stops", StringComparison.Ordinal));
    }

    [Fact]
    public void ALargeTcpPacketWithGsoInfoGoesToThePortWholeForTheHostToSegment()
    {
        Assert.Equal("1", _front.ReadBackend("feature-gso-tcpv4"));
        Assert.Equal("1", _front.ReadBackend("feature-gso-tcpv6"));
        _front.Connect();
        byte[] packet = Ipv4Frame(6, payload: 3000 - 54);
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(50), 0x1234);   // the pseudo-header sum Linux leaves: kept as it is
        byte[] packet6 = Ipv6TcpFrame(payload: 3000 - 74);
        _front.Guest.Memory.Write(PageA, packet.AsSpan(0, 2000));
        _front.Guest.Memory.Write(PageB, packet.AsSpan(2000));
        _front.Guest.Memory.Write(PageC, packet6.AsSpan(0, 2000));
        _front.Guest.Memory.Write(PageD, packet6.AsSpan(2000));
        _front.Guest.Grant(9, PageA >> 12, readOnly: true);
        _front.Guest.Grant(10, PageB >> 12, readOnly: true);
        _front.Guest.Grant(13, PageC >> 12, readOnly: true);
        _front.Guest.Grant(14, PageD >> 12, readOnly: true);
        const ushort First = XenNetBackend.TxChecksumBlank | XenNetBackend.TxDataValidated | XenNetBackend.TxMoreData | XenNetBackend.TxExtraInfo;

        void QueueLarge(ushort id, ushort flags, byte gsoType, uint first = 9, uint second = 10)
        {
            _front.QueueTx(first, 0, flags, id, 3000);
            _front.QueueTx(1 | (1448u << 16), gsoType, 0, 0, 0);         // netif_extra_info: GSO, gso.size 1448, gso.type
            _front.QueueTx(second, 0, 0, (ushort)(id + 1), 1000);
        }

        QueueLarge(30, First, 1);
        QueueLarge(40, First, 2, 13, 14);                                  // TCPv6 GSO
        QueueLarge(50, First & ~XenNetBackend.TxChecksumBlank, 1);         // GSO without a blank checksum
        QueueLarge(60, First, 2);                                          // TCPv6 GSO over an IPv4 packet
        QueueLarge(70, First, 3);                                          // an unknown GSO type
        _front.Push();

        Assert.Equal(
            [(30, 0), (0, 1), (31, 0), (40, 0), (0, 1), (41, 0), (50, -1), (0, 1), (51, -1), (60, -1), (0, 1), (61, -1), (70, -1), (0, 1), (71, -1)],
            _front.TakeTxResponses().Select(r => ((int)r.Id, (int)r.Status)));
        Assert.Equal([packet, packet6], _front.Port.Sent);
        Assert.Equal([new XenSegmentationOffload(1448, 54, 34, 16), new XenSegmentationOffload(1448, 74, 54, 16, Ipv6: true)], _front.Port.Offloads);
        Assert.Equal(2, _front.Backend.Counters["tx-gso-packets"]);

        Assert.False(XenPacketChecksum.TryLocateTcpv4(Ipv4Frame(17, payload: 100), out _, out _));   // UDP
        byte[] cut = Ipv4Frame(6, payload: 0);
        cut[14 + 20 + 12] = 0xF0;                                          // a 60-byte TCP header in a 20-byte one
        Assert.False(XenPacketChecksum.TryLocateTcpv4(cut, out _, out _));
        byte[] extension = Ipv6TcpFrame(payload: 10);
        extension[14 + 6] = 0;                                             // a hop-by-hop header first: not what TSO sends
        Assert.False(XenPacketChecksum.TryLocateTcpv6(extension, out _, out _));
    }

    [Fact]
    public void ALargeTcpPacketFromTheHostGoesToTheGuestOverSeveralBuffersWithGsoInfo()
    {
        // netfront's keys: scatter-gather and TCPv4 GSO, no IPv6 checksum offload.
        _front.Write("feature-sg", "1");
        _front.Write("feature-gso-tcpv4", "1");
        _front.Write("feature-gso-tcpv6", "1");
        _front.Connect();
        Assert.Equal(XenReceiveOffloads.Checksum | XenReceiveOffloads.TcpV4, _front.Port.ReceiveOffloads);

        ulong[] pages = [PageA, PageB, PageC, PageD];
        for (uint i = 0; i < pages.Length; i++)
        {
            _front.Guest.Grant(20 + i, pages[i] >> 12, readOnly: false);
        }

        for (ushort i = 0; i < 3; i++)
        {
            _front.PostRx((ushort)(100 + i), 20u + i);
        }

        _front.Push();
        byte[] packet = Ipv4Frame(6, payload: 9000 - 54);
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(50), 0x1234);   // a partial checksum: the guest's to finish
        _front.Backend.Deliver(packet, new XenSegmentationOffload(1448, 54, 34, 16));
        _front.Backend.Process();
        Assert.Empty(_front.TakeRxResponses());                            // three data slots and the extra info: four buffers

        _front.PostRx(103, 23);
        _front.Push();
        // The second slot is the extra info, not a response (read as one: "id" = type 1, flags 0).
        Assert.Equal([(100, 4096), (1, 0), (102, 4096), (103, 808)], _front.TakeRxResponses().Select(r => ((int)r.Id, (int)r.Status)));
        Assert.Equal(
            XenNetBackend.RxChecksumBlank | XenNetBackend.RxDataValidated | XenNetBackend.RxExtraInfo | XenNetBackend.RxMoreData,
            BinaryPrimitives.ReadUInt16LittleEndian(_front.RxSlot(0)[4..]));
        Span<byte> extra = _front.RxSlot(1);
        Assert.Equal([1, 0, 1448 & 0xFF, 1448 >> 8, 1, 0, 0, 0], extra.ToArray());   // GSO, gso.size 1448, gso.type TCPv4
        Assert.Equal(XenNetBackend.RxMoreData, BinaryPrimitives.ReadUInt16LittleEndian(_front.RxSlot(2)[4..]));
        Assert.Equal(0, BinaryPrimitives.ReadUInt16LittleEndian(_front.RxSlot(3)[4..]));
        byte[] received = [.. _front.Guest.Memory.GetSpan(PageA, 4096), .. _front.Guest.Memory.GetSpan(PageC, 4096), .. _front.Guest.Memory.GetSpan(PageD, 808)];
        Assert.Equal(packet, received);
        Assert.Equal(1, _front.Backend.Counters["rx-gso-packets"]);

        // A partial IPv6 checksum the front end does not take is completed here; a large TCPv6 packet it did not ask for is dropped.
        byte[] frame6 = Ipv6TcpFrame(payload: 100);
        byte[] expected6 = (byte[])frame6.Clone();
        BinaryPrimitives.WriteUInt16BigEndian(frame6.AsSpan(14 + 40 + 16), (ushort)Fold(Ipv6PseudoHeaderSum(frame6)));
        _front.Guest.Grant(20, PageA >> 12, readOnly: false);
        _front.PostRx(104, 20);
        _front.Push();
        _front.Backend.Deliver(Ipv6TcpFrame(payload: 5000), new XenSegmentationOffload(1428, 74, 54, 16, Ipv6: true));
        _front.Backend.Deliver(frame6, new XenSegmentationOffload(0, 0, 54, 16, Ipv6: true));
        _front.Backend.Process();
        Assert.Equal([(104, frame6.Length)], _front.TakeRxResponses().Select(r => ((int)r.Id, (int)r.Status)));
        Assert.Equal(0, BinaryPrimitives.ReadUInt16LittleEndian(_front.RxSlot(4)[4..]));
        Assert.Equal(expected6, _front.Guest.Memory.GetSpan(PageA, frame6.Length).ToArray());
        Assert.Equal(1, _front.Backend.Counters["rx-dropped-offload"]);
    }

    [Fact]
    public void AFrontEndWithoutChecksumOffloadGetsCompleteFramesOnePerBuffer()
    {
        _front.Write("feature-no-csum-offload", "1");
        _front.Write("feature-gso-tcpv4", "1");
        _front.Connect();
        Assert.Equal(XenReceiveOffloads.None, _front.Port.ReceiveOffloads);
        _front.Guest.Grant(20, PageA >> 12, readOnly: false);
        _front.Guest.Grant(21, PageB >> 12, readOnly: false);
        _front.PostRx(1, 20);
        _front.PostRx(2, 21);
        _front.Push();
        byte[] frame = Ipv4Frame(6, payload: 500);
        byte[] expected = (byte[])frame.Clone();
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(14 + 20 + 16), (ushort)Fold(PseudoHeaderSum(frame, 6)));
        _front.Backend.Deliver(new byte[5000]);                            // needs two buffers: no feature-sg, dropped
        _front.Backend.Deliver(frame, new XenSegmentationOffload(0, 0, 34, 16));
        _front.Backend.Process();
        Assert.Equal([(1, frame.Length)], _front.TakeRxResponses().Select(r => ((int)r.Id, (int)r.Status)));
        Assert.Equal(0, BinaryPrimitives.ReadUInt16LittleEndian(_front.RxSlot(0)[4..]));   // no csum_blank: the checksum is complete
        Assert.Equal(expected, _front.Guest.Memory.GetSpan(PageA, frame.Length).ToArray());
        Assert.Equal(1, _front.Backend.Counters["rx-dropped-oversize"]);
    }

    [Fact]
    public void ABlankUdpOrTcpChecksumIsCompletedAsTheHostWouldVerifyIt()
    {
        foreach (byte protocol in new byte[] { 6, 17 })
        {
            byte[] frame = Ipv4Frame(protocol, payload: 33);
            int l4 = 14 + 20;
            int field = l4 + (protocol == 6 ? 16 : 6);
            ushort expected = BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(field));

            // What Linux leaves for CHECKSUM_PARTIAL: the folded pseudo-header sum, not complemented.
            BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(field), (ushort)Fold(PseudoHeaderSum(frame, protocol)));
            Assert.True(XenPacketChecksum.TryComplete(frame));
            Assert.Equal(expected, BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(field)));
        }

        Assert.False(XenPacketChecksum.TryComplete(Ipv4Frame(1, payload: 8)));   // ICMP: nothing to complete
        Assert.False(XenPacketChecksum.TryComplete(new byte[20]));
    }

    /// <summary>An Ethernet/IPv4 frame with a TCP or UDP header and a correct checksum.</summary>
    private static byte[] Ipv4Frame(byte protocol, int payload)
    {
        int l4Length = (protocol == 6 ? 20 : 8) + payload;
        var frame = new byte[14 + 20 + l4Length];
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(12), 0x0800);
        frame[14] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(16), (ushort)(20 + l4Length));
        frame[14 + 8] = 64;
        frame[14 + 9] = protocol;
        new byte[] { 10, 79, 0, 2, 10, 79, 0, 1 }.CopyTo(frame, 14 + 12);
        for (int i = 14 + 20; i < frame.Length; i++)
        {
            frame[i] = (byte)(i * 13);
        }

        if (protocol is 6 or 17)
        {
            int field = 14 + 20 + (protocol == 6 ? 16 : 6);
            frame[field] = frame[field + 1] = 0;
            if (protocol == 17)
            {
                BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(14 + 20 + 4), (ushort)l4Length);
            }

            ulong sum = PseudoHeaderSum(frame, protocol) + Sum(frame.AsSpan(14 + 20));
            BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(field), (ushort)~Fold(sum));
        }

        return frame;
    }

    /// <summary>An Ethernet/IPv6 frame with a TCP header and a correct checksum.</summary>
    private static byte[] Ipv6TcpFrame(int payload)
    {
        int l4Length = 20 + payload;
        var frame = new byte[14 + 40 + l4Length];
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(12), 0x86DD);
        frame[14] = 0x60;
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(14 + 4), (ushort)l4Length);
        frame[14 + 6] = 6;
        frame[14 + 7] = 64;
        frame[14 + 8 + 15] = 2;                                            // fe80::2 -> fe80::1, roughly
        frame[14 + 24 + 15] = 1;
        for (int i = 14 + 40; i < frame.Length; i++)
        {
            frame[i] = (byte)(i * 7);
        }

        frame[14 + 40 + 12] = 0x50;                                        // data offset: 20 bytes
        int field = 14 + 40 + 16;
        frame[field] = frame[field + 1] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(field), (ushort)~Fold(Ipv6PseudoHeaderSum(frame) + Sum(frame.AsSpan(14 + 40))));
        return frame;
    }

    private static ulong Ipv6PseudoHeaderSum(byte[] frame) => Sum(frame.AsSpan(14 + 8, 32)) + 6 + (ulong)(frame.Length - 14 - 40);

    private static ulong PseudoHeaderSum(byte[] frame, byte protocol) =>
        Sum(frame.AsSpan(14 + 12, 8)) + protocol + (ulong)(frame.Length - 14 - 20);

    private static ulong Sum(ReadOnlySpan<byte> data)
    {
        ulong sum = 0;
        for (int i = 0; i < data.Length; i += 2)
        {
            sum += (ulong)(data[i] << 8) + (i + 1 < data.Length ? data[i + 1] : 0u);
        }

        return sum;
    }

    private static uint Fold(ulong sum)
    {
        while (sum >> 16 != 0)
        {
            sum = (sum & 0xFFFF) + (sum >> 16);
        }

        return (uint)sum;
    }
}
