using System.Buffers.Binary;
using System.Net;
using System.Text;
using SharpVisor.Host.Firecracker.Mmds;

namespace SharpVisor.Host.Tests.Mmds;

/// <summary>
/// The guest's frames to the MMDS, built by hand: ARP for its address is answered, a TCP
/// connection to port 80 carries one HTTP request and its answer (V1, and V2 with a token),
/// checksums are right, and malformed or foreign frames are dropped or left for the TAP.
/// </summary>
public sealed class MmdsNetworkStackTests
{
    private static readonly byte[] s_guestMac = [0x06, 0, 0xAC, 0x10, 0, 2];
    private static readonly byte[] s_guestIp = [169, 254, 0, 2];
    private static readonly byte[] s_mmdsIp = [169, 254, 169, 254];

    [Fact]
    public void ArpForTheMmdsAddressIsAnsweredAndOtherArpIsNot()
    {
        var stack = new MmdsNetworkStack(new MmdsDataStore(), new IPAddress(s_mmdsIp));
        var replies = new List<byte[]>();

        Assert.True(stack.TryHandle(Arp(s_mmdsIp), replies.Add));
        Assert.False(stack.TryHandle(Arp([169, 254, 0, 1]), replies.Add));

        byte[] reply = Assert.Single(replies);
        Assert.Equal(s_guestMac, reply[..6]);
        Assert.Equal(2, BinaryPrimitives.ReadUInt16BigEndian(reply.AsSpan(20)));
        Assert.Equal(MmdsNetworkStack.Mac.ToArray(), reply[22..28]);
        Assert.Equal(s_mmdsIp, reply[28..32]);
        Assert.Equal(s_guestIp, reply[38..42]);
    }

    [Fact]
    public void AV1RequestIsAnsweredOverOneConnection()
    {
        var store = new MmdsDataStore();
        store.Put("""{"latest": {"meta-data": {"ami-id": "ami-12345678"}}}"""u8);
        var stack = new MmdsNetworkStack(store, new IPAddress(s_mmdsIp));

        string response = Exchange(stack, 40000, "GET /latest/meta-data/ami-id HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 200 OK\r\n", response);
        Assert.EndsWith("\r\n\r\nami-12345678", response);
    }

    [Fact]
    public void AV2SessionNeedsItsToken()
    {
        var store = new MmdsDataStore { Version = MmdsVersion.V2 };
        store.Put("""{"key": "value"}"""u8);
        var stack = new MmdsNetworkStack(store, new IPAddress(s_mmdsIp));

        string refused = Exchange(stack, 40001, "GET /key HTTP/1.1\r\n\r\n");
        string token = Exchange(stack, 40002, "PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: 60\r\n\r\n");
        token = token[(token.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4)..];
        string served = Exchange(stack, 40003, $"GET /key HTTP/1.1\r\nX-metadata-token: {token}\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 401 ", refused);
        Assert.StartsWith("HTTP/1.1 200 OK", served);
        Assert.EndsWith("\r\n\r\nvalue", served);
    }

    [Fact]
    public void MalformedAndForeignFramesNeverThrow()
    {
        var stack = new MmdsNetworkStack(new MmdsDataStore(), new IPAddress(s_mmdsIp));
        var replies = new List<byte[]>();
        byte[] syn = Tcp(40004, 1000, 0, 0x02, []);

        Assert.False(stack.TryHandle(syn.AsSpan(0, 10), replies.Add));
        Assert.True(stack.TryHandle(syn.AsSpan(0, 40), replies.Add)); // for the MMDS, but cut short: dropped
        byte[] badIhl = (byte[])syn.Clone();
        badIhl[14] = 0x4F;
        Assert.True(stack.TryHandle(badIhl, replies.Add));
        byte[] other = Tcp(40005, 1000, 0, 0x02, []);
        other[30] = 8; // to 8.254.169.254: not ours, for the TAP
        Assert.False(stack.TryHandle(other, replies.Add));
        var random = new Random(16);
        for (int i = 0; i < 2000; i++)
        {
            byte[] junk = (byte[])syn.Clone();
            random.NextBytes(junk.AsSpan(34 + random.Next(0, 20), 1));
            junk[34 + 12] = (byte)random.Next(0, 256);
            stack.TryHandle(junk, replies.Add);
        }

        Assert.DoesNotContain(replies, r => r.Length < 54);
    }

    [Fact]
    public void AnotherPortIsReset()
    {
        var stack = new MmdsNetworkStack(new MmdsDataStore(), new IPAddress(s_mmdsIp));
        var replies = new List<byte[]>();
        byte[] syn = Tcp(40006, 5, 0, 0x02, []);
        BinaryPrimitives.WriteUInt16BigEndian(syn.AsSpan(36), 8080);

        Assert.True(stack.TryHandle(syn, replies.Add));
        Assert.Equal(0x14, Assert.Single(replies)[47]);
    }

    /// <summary>SYN, the request, the guest's FIN after the answer; returns the answer's bytes, checking every reply's checksums.</summary>
    private static string Exchange(MmdsNetworkStack stack, ushort port, string request)
    {
        var replies = new List<byte[]>();
        Assert.True(stack.TryHandle(Tcp(port, 1000, 0, 0x02, []), replies.Add));
        byte[] synAck = Assert.Single(replies);
        Assert.Equal(0x12, synAck[47]);
        uint server = BinaryPrimitives.ReadUInt32BigEndian(synAck.AsSpan(38)) + 1;
        Assert.Equal(1001u, BinaryPrimitives.ReadUInt32BigEndian(synAck.AsSpan(42)));
        replies.Clear();

        stack.TryHandle(Tcp(port, 1001, server, 0x10, []), replies.Add);
        byte[] data = Encoding.ASCII.GetBytes(request);
        // In two segments, as a guest may send it.
        stack.TryHandle(Tcp(port, 1001, server, 0x18, data[..5]), replies.Add);
        stack.TryHandle(Tcp(port, 1001 + 5u, server, 0x18, data[5..]), replies.Add);

        var answer = new MemoryStream();
        bool fin = false;
        foreach (byte[] frame in replies)
        {
            Assert.Equal(0, MmdsNetworkStack.Checksum(frame.AsSpan(14, 20), 0));
            int tcpLength = frame.Length - 34;
            uint pseudo = (uint)((169 << 8) + 254 + (169 << 8) + 254 + (169 << 8) + 254 + (0 << 8) + 2) + 6 + (uint)tcpLength;
            Assert.Equal(0, MmdsNetworkStack.Checksum(frame.AsSpan(34), pseudo));
            answer.Write(frame.AsSpan(54));
            fin |= (frame[47] & 0x01) != 0;
        }

        Assert.True(fin, "the MMDS closes its side after the answer");
        uint end = BinaryPrimitives.ReadUInt32BigEndian(replies[^1].AsSpan(38)) + 1;
        replies.Clear();
        stack.TryHandle(Tcp(port, 1001 + (uint)data.Length, end, 0x11, []), replies.Add);
        Assert.Equal(0x10, Assert.Single(replies)[47]);
        return Encoding.UTF8.GetString(answer.ToArray());
    }

    private static byte[] Arp(byte[] target)
    {
        byte[] frame = new byte[42];
        frame.AsSpan(0, 6).Fill(0xFF);
        s_guestMac.CopyTo(frame, 6);
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(12), 0x0806);
        Span<byte> a = frame.AsSpan(14);
        BinaryPrimitives.WriteUInt16BigEndian(a, 1);
        BinaryPrimitives.WriteUInt16BigEndian(a[2..], 0x0800);
        a[4] = 6;
        a[5] = 4;
        BinaryPrimitives.WriteUInt16BigEndian(a[6..], 1);
        s_guestMac.CopyTo(a[8..]);
        s_guestIp.CopyTo(a[14..]);
        target.CopyTo(a[24..]);
        return frame;
    }

    private static byte[] Tcp(ushort sourcePort, uint seq, uint ack, byte flags, byte[] data)
    {
        byte[] frame = new byte[54 + data.Length];
        MmdsNetworkStack.Mac.CopyTo(frame);
        s_guestMac.CopyTo(frame, 6);
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(12), 0x0800);
        Span<byte> ip = frame.AsSpan(14);
        ip[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], (ushort)(40 + data.Length));
        ip[8] = 64;
        ip[9] = 6;
        s_guestIp.CopyTo(ip[12..]);
        s_mmdsIp.CopyTo(ip[16..]);
        Span<byte> tcp = frame.AsSpan(34);
        BinaryPrimitives.WriteUInt16BigEndian(tcp, sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[2..], 80);
        BinaryPrimitives.WriteUInt32BigEndian(tcp[4..], seq);
        BinaryPrimitives.WriteUInt32BigEndian(tcp[8..], ack);
        tcp[12] = 0x50;
        tcp[13] = flags;
        data.CopyTo(tcp[20..]);
        return frame;
    }
}
