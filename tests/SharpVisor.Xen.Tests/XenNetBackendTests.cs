using System.Buffers.Binary;

namespace SharpVisor.Xen.Tests;

public sealed class XenNetBackendTests : IDisposable
{
    private const ulong PageA = 0x40000;
    private const ulong PageB = 0x41000;

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
        _front.Connect();
        byte[] packet = Ipv4Frame(6, payload: 3000 - 54);
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(50), 0x1234);   // the pseudo-header sum Linux leaves: kept as it is
        _front.Guest.Memory.Write(PageA, packet.AsSpan(0, 2000));
        _front.Guest.Memory.Write(PageB, packet.AsSpan(2000));
        _front.Guest.Grant(9, PageA >> 12, readOnly: true);
        _front.Guest.Grant(10, PageB >> 12, readOnly: true);
        const ushort First = XenNetBackend.TxChecksumBlank | XenNetBackend.TxDataValidated | XenNetBackend.TxMoreData | XenNetBackend.TxExtraInfo;

        void QueueLarge(ushort id, ushort flags, byte gsoType)
        {
            _front.QueueTx(9, 0, flags, id, 3000);
            _front.QueueTx(1 | (1448u << 16), gsoType, 0, 0, 0);         // netif_extra_info: GSO, gso.size 1448, gso.type
            _front.QueueTx(10, 0, 0, (ushort)(id + 1), 1000);
        }

        QueueLarge(30, First, 1);
        QueueLarge(40, First, 2);                                          // TCPv6 GSO: not offered
        QueueLarge(50, First & ~XenNetBackend.TxChecksumBlank, 1);         // GSO without a blank checksum
        _front.Push();

        Assert.Equal(
            [(30, 0), (0, 1), (31, 0), (40, -1), (0, 1), (41, -1), (50, -1), (0, 1), (51, -1)],
            _front.TakeTxResponses().Select(r => ((int)r.Id, (int)r.Status)));
        Assert.Equal(packet, Assert.Single(_front.Port.Sent));
        Assert.Equal(new XenSegmentationOffload(1448, 54, 34, 16), Assert.Single(_front.Port.Offloads));
        Assert.Equal(1, _front.Backend.Counters["tx-gso-packets"]);

        Assert.False(XenPacketChecksum.TryLocateTcpv4(Ipv4Frame(17, payload: 100), out _, out _));   // UDP
        byte[] cut = Ipv4Frame(6, payload: 0);
        cut[14 + 20 + 12] = 0xF0;                                          // a 60-byte TCP header in a 20-byte one
        Assert.False(XenPacketChecksum.TryLocateTcpv4(cut, out _, out _));
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
