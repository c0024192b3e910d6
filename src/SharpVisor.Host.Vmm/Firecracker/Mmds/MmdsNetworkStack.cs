using System.Buffers.Binary;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using SharpVisor.Host.Http;

namespace SharpVisor.Host.Firecracker.Mmds;

/// <summary>
/// The guest's way to the MMDS, as Firecracker's dumbo stack: the NIC hands every frame the
/// guest sends to <see cref="TryHandle"/>; an ARP request for <see cref="Address"/> and TCP to
/// its port 80 are answered here (replies through the callback, for the guest's receive queue)
/// and never reach the TAP. The guest is hostile: frames are parsed with bounds checks and
/// dropped when malformed, at most <see cref="MaxConnections"/> connections of at most
/// <see cref="MaxRequestBytes"/> request bytes each, one request per connection, in-order
/// segments only (anything else is answered with the expected ACK). Replies are not
/// retransmitted: the virtual link does not lose frames the guest has buffers for.
/// </summary>
public sealed class MmdsNetworkStack
{
    public const int MaxConnections = 64;
    public const int MaxRequestBytes = 8 * 1024;
    public const int SegmentBytes = 1400;
    public const int Port = 80;

    private const ushort EtherTypeIpv4 = 0x0800;
    private const ushort EtherTypeArp = 0x0806;
    private const byte ProtocolTcp = 6;
    private const byte FlagFin = 0x01;
    private const byte FlagSyn = 0x02;
    private const byte FlagRst = 0x04;
    private const byte FlagPsh = 0x08;
    private const byte FlagAck = 0x10;

    private readonly MmdsDataStore _store;
    private readonly byte[] _address;
    private readonly Dictionary<(uint Ip, ushort Port), Connection> _connections = [];
    private readonly object _lock = new();

    public MmdsNetworkStack(MmdsDataStore store, IPAddress address)
    {
        _store = store;
        _address = address.GetAddressBytes();
        if (_address.Length != 4)
        {
            throw new ArgumentException("the MMDS address must be IPv4", nameof(address));
        }
    }

    /// <summary>The MMDS's own (locally administered) MAC, as Firecracker's: 06:01:23:45:67:01.</summary>
    public static ReadOnlySpan<byte> Mac => [0x06, 0x01, 0x23, 0x45, 0x67, 0x01];

    public IPAddress Address => new(_address);

    /// <summary>True when <paramref name="frame"/> (an Ethernet frame) was for the MMDS; its replies go to <paramref name="reply"/>.</summary>
    public bool TryHandle(ReadOnlySpan<byte> frame, Action<byte[]> reply)
    {
        if (frame.Length < 14)
        {
            return false;
        }

        ushort etherType = BinaryPrimitives.ReadUInt16BigEndian(frame[12..]);
        ReadOnlySpan<byte> payload = frame[14..];
        lock (_lock)
        {
            return etherType switch
            {
                EtherTypeArp => HandleArp(payload, reply),
                EtherTypeIpv4 => HandleIpv4(frame[6..12], payload, reply),
                _ => false,
            };
        }
    }

    private bool HandleArp(ReadOnlySpan<byte> arp, Action<byte[]> reply)
    {
        // Ethernet/IPv4 ARP request for our address.
        if (arp.Length < 28 || BinaryPrimitives.ReadUInt16BigEndian(arp) != 1 || BinaryPrimitives.ReadUInt16BigEndian(arp[2..]) != EtherTypeIpv4
            || arp[4] != 6 || arp[5] != 4 || !arp.Slice(24, 4).SequenceEqual(_address))
        {
            return false;
        }

        if (BinaryPrimitives.ReadUInt16BigEndian(arp[6..]) != 1)
        {
            return true; // a reply or anything else about our address: nobody else needs it
        }

        ReadOnlySpan<byte> senderMac = arp.Slice(8, 6);
        ReadOnlySpan<byte> senderIp = arp.Slice(14, 4);
        byte[] answer = new byte[14 + 28];
        senderMac.CopyTo(answer);
        Mac.CopyTo(answer.AsSpan(6));
        BinaryPrimitives.WriteUInt16BigEndian(answer.AsSpan(12), EtherTypeArp);
        Span<byte> a = answer.AsSpan(14);
        BinaryPrimitives.WriteUInt16BigEndian(a, 1);
        BinaryPrimitives.WriteUInt16BigEndian(a[2..], EtherTypeIpv4);
        a[4] = 6;
        a[5] = 4;
        BinaryPrimitives.WriteUInt16BigEndian(a[6..], 2);
        Mac.CopyTo(a[8..]);
        _address.CopyTo(a[14..]);
        senderMac.CopyTo(a[18..]);
        senderIp.CopyTo(a[24..]);
        reply(answer);
        return true;
    }

    private bool HandleIpv4(ReadOnlySpan<byte> guestMac, ReadOnlySpan<byte> ip, Action<byte[]> reply)
    {
        if (ip.Length < 20 || (ip[0] >> 4) != 4 || !ip.Slice(16, 4).SequenceEqual(_address))
        {
            return false;
        }

        int headerLength = (ip[0] & 0x0F) * 4;
        int totalLength = BinaryPrimitives.ReadUInt16BigEndian(ip[2..]);
        bool fragmented = (BinaryPrimitives.ReadUInt16BigEndian(ip[6..]) & 0x3FFF) != 0;
        if (headerLength < 20 || totalLength < headerLength || totalLength > ip.Length || fragmented || ip[9] != ProtocolTcp)
        {
            return true; // for the MMDS but not something it serves: dropped
        }

        HandleTcp(guestMac, ip.Slice(12, 4), ip[headerLength..totalLength], reply);
        return true;
    }

    private void HandleTcp(ReadOnlySpan<byte> guestMac, ReadOnlySpan<byte> guestIp, ReadOnlySpan<byte> tcp, Action<byte[]> reply)
    {
        if (tcp.Length < 20 || (tcp[12] >> 4) * 4 < 20 || (tcp[12] >> 4) * 4 > tcp.Length)
        {
            return;
        }

        var peer = new Peer(guestMac.ToArray(), guestIp.ToArray(), BinaryPrimitives.ReadUInt16BigEndian(tcp));
        ushort port = BinaryPrimitives.ReadUInt16BigEndian(tcp[2..]);
        uint seq = BinaryPrimitives.ReadUInt32BigEndian(tcp[4..]);
        uint ack = BinaryPrimitives.ReadUInt32BigEndian(tcp[8..]);
        byte flags = tcp[13];
        ReadOnlySpan<byte> data = tcp[((tcp[12] >> 4) * 4)..];
        var key = (BinaryPrimitives.ReadUInt32BigEndian(guestIp), peer.Port);
        _connections.TryGetValue(key, out Connection? connection);

        if ((flags & FlagRst) != 0)
        {
            _connections.Remove(key);
            return;
        }

        if (port != Port)
        {
            reply(Segment(peer, (flags & FlagAck) != 0 ? ack : 0, seq + (uint)data.Length + ((flags & FlagSyn) != 0 ? 1u : 0u), FlagRst | FlagAck, []));
            return;
        }

        if ((flags & FlagSyn) != 0)
        {
            if (connection is null && _connections.Count >= MaxConnections)
            {
                // Connections whose answer went out are the first to go.
                foreach (var done in _connections.Where(c => c.Value.FinSent).Select(c => c.Key).ToList())
                {
                    _connections.Remove(done);
                }
            }

            if (connection is null && _connections.Count >= MaxConnections)
            {
                reply(Segment(peer, 0, seq + 1, FlagRst | FlagAck, []));
                return;
            }

            connection = new Connection(peer, BinaryPrimitives.ReadUInt32LittleEndian(RandomNumberGenerator.GetBytes(4)), seq + 1);
            _connections[key] = connection;
            reply(Segment(peer, connection.Sequence, connection.Expected, FlagSyn | FlagAck, []));
            connection.Sequence++;
            return;
        }

        if (connection is null)
        {
            if ((flags & FlagFin) != 0 || data.Length > 0)
            {
                reply(Segment(peer, (flags & FlagAck) != 0 ? ack : 0, seq + (uint)data.Length, FlagRst | FlagAck, []));
            }

            return;
        }

        if (seq != connection.Expected)
        {
            // Out of order or a repeat: say again what is expected.
            reply(Segment(peer, connection.Sequence, connection.Expected, FlagAck, []));
            return;
        }

        if (data.Length > 0 && !connection.Answered)
        {
            if (connection.Request.Length + data.Length > MaxRequestBytes)
            {
                _connections.Remove(key);
                reply(Segment(peer, connection.Sequence, seq + (uint)data.Length, FlagRst | FlagAck, []));
                return;
            }

            connection.Request.Write(data);
            connection.Expected += (uint)data.Length;
            if (TryAnswer(connection, out byte[]? answer))
            {
                connection.Answered = true;
                for (int offset = 0; offset < answer.Length; offset += SegmentBytes)
                {
                    int length = Math.Min(SegmentBytes, answer.Length - offset);
                    reply(Segment(peer, connection.Sequence, connection.Expected, FlagAck | FlagPsh, answer.AsSpan(offset, length)));
                    connection.Sequence += (uint)length;
                }

                // One request per connection (Connection: close): our side ends here.
                reply(Segment(peer, connection.Sequence, connection.Expected, FlagFin | FlagAck, []));
                connection.Sequence++;
                connection.FinSent = true;
            }
            else
            {
                reply(Segment(peer, connection.Sequence, connection.Expected, FlagAck, []));
            }
        }
        else if (data.Length > 0)
        {
            connection.Expected += (uint)data.Length;
        }

        if ((flags & FlagFin) != 0)
        {
            connection.Expected++;
            if (!connection.FinSent)
            {
                reply(Segment(peer, connection.Sequence, connection.Expected, FlagFin | FlagAck, []));
                connection.Sequence++;
                connection.FinSent = true;
            }
            else
            {
                reply(Segment(peer, connection.Sequence, connection.Expected, FlagAck, []));
            }

            _connections.Remove(key);
        }
        else if (connection.FinSent && (flags & FlagAck) != 0 && ack == connection.Sequence && data.Length == 0)
        {
            // The guest acknowledged our FIN; its own FIN may follow and is answered statelessly.
            connection.FinAcknowledged = true;
        }
    }

    /// <summary>Answers the buffered request once its head (and Content-Length body) is complete.</summary>
    private bool TryAnswer(Connection connection, out byte[] answer)
    {
        answer = [];
        ReadOnlySpan<byte> bytes = connection.Request.GetBuffer().AsSpan(0, (int)connection.Request.Length);
        int headEnd = bytes.IndexOf("\r\n\r\n"u8);
        if (headEnd < 0)
        {
            return false;
        }

        MmdsAnswer result;
        try
        {
            HttpRequestReader.Head head = HttpRequestReader.ParseHead(bytes[..headEnd]);
            if (bytes.Length - headEnd - 4 < head.ContentLength)
            {
                return false;
            }

            string? Header(string name) => head.Headers.FirstOrDefault(h => h.Key.Equals(name, StringComparison.OrdinalIgnoreCase)).Value;
            result = _store.Answer(head.Method, head.Path, Header);
        }
        catch (SharpVisor.Host.Http.HttpProtocolException e)
        {
            result = MmdsAnswer.Text(400, e.Message);
        }

        byte[] body = Encoding.UTF8.GetBytes(result.Body);
        string headText = $"HTTP/1.1 {result.StatusCode} {UnixSocketHttpServer.ReasonPhrase(result.StatusCode)}\r\nContent-Type: {result.ContentType}\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n";
        answer = [.. Encoding.ASCII.GetBytes(headText), .. body];
        return true;
    }

    private byte[] Segment(Peer peer, uint seq, uint ack, byte flags, ReadOnlySpan<byte> data)
    {
        byte[] frame = new byte[14 + 20 + 20 + data.Length];
        peer.Mac.CopyTo(frame, 0);
        Mac.CopyTo(frame.AsSpan(6));
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(12), EtherTypeIpv4);

        Span<byte> ip = frame.AsSpan(14, 20);
        ip[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], (ushort)(40 + data.Length));
        BinaryPrimitives.WriteUInt16BigEndian(ip[6..], 0x4000); // don't fragment
        ip[8] = 64;
        ip[9] = ProtocolTcp;
        _address.CopyTo(ip[12..]);
        peer.Ip.CopyTo(ip[16..]);
        BinaryPrimitives.WriteUInt16BigEndian(ip[10..], Checksum(ip, 0));

        Span<byte> tcp = frame.AsSpan(34);
        BinaryPrimitives.WriteUInt16BigEndian(tcp, Port);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[2..], peer.Port);
        BinaryPrimitives.WriteUInt32BigEndian(tcp[4..], seq);
        BinaryPrimitives.WriteUInt32BigEndian(tcp[8..], ack);
        tcp[12] = 5 << 4;
        tcp[13] = flags;
        BinaryPrimitives.WriteUInt16BigEndian(tcp[14..], 65535);
        data.CopyTo(tcp[20..]);

        // The pseudo header: source, destination, protocol and TCP length.
        uint pseudo = Sum(_address) + Sum(peer.Ip) + ProtocolTcp + (uint)tcp.Length;
        BinaryPrimitives.WriteUInt16BigEndian(tcp[16..], Checksum(tcp, pseudo));
        return frame;
    }

    public static ushort Checksum(ReadOnlySpan<byte> bytes, uint initial)
    {
        uint sum = initial + Sum(bytes);
        while ((sum >> 16) != 0)
        {
            sum = (sum & 0xFFFF) + (sum >> 16);
        }

        return (ushort)~sum;
    }

    private static uint Sum(ReadOnlySpan<byte> bytes)
    {
        uint sum = 0;
        for (int i = 0; i + 1 < bytes.Length; i += 2)
        {
            sum += BinaryPrimitives.ReadUInt16BigEndian(bytes[i..]);
        }

        if ((bytes.Length & 1) != 0)
        {
            sum += (uint)bytes[^1] << 8;
        }

        return sum;
    }

    private sealed record Peer(byte[] Mac, byte[] Ip, ushort Port);

    private sealed class Connection(Peer peer, uint sequence, uint expected)
    {
        public Peer Peer { get; } = peer;

        /// <summary>Our next sequence number.</summary>
        public uint Sequence { get; set; } = sequence;

        /// <summary>The guest's next sequence number we expect (what we acknowledge).</summary>
        public uint Expected { get; set; } = expected;

        public MemoryStream Request { get; } = new();

        public bool Answered { get; set; }

        public bool FinSent { get; set; }

        public bool FinAcknowledged { get; set; }
    }
}
