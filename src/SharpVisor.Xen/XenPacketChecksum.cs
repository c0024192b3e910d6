using System.Buffers.Binary;

namespace SharpVisor.Xen;

/// <summary>
/// Completes the TCP or UDP checksum of a frame the guest sent with a blank one (Linux's
/// CHECKSUM_PARTIAL: the field holds the pseudo-header sum): the one's-complement sum from the
/// transport header to the end of the frame, folded and complemented, as skb_checksum_help does.
/// </summary>
public static class XenPacketChecksum
{
    private const int TcpChecksumOffset = 16;
    private const int UdpChecksumOffset = 6;

    /// <summary>False when the frame is not TCP or UDP over IPv4/IPv6 (optionally VLAN-tagged) or is too short for its headers.</summary>
    public static bool TryComplete(Span<byte> frame)
    {
        int l3 = 14;
        if (frame.Length < l3)
        {
            return false;
        }

        ushort etherType = BinaryPrimitives.ReadUInt16BigEndian(frame[12..]);
        if (etherType == 0x8100)
        {
            if (frame.Length < 18)
            {
                return false;
            }

            etherType = BinaryPrimitives.ReadUInt16BigEndian(frame[16..]);
            l3 = 18;
        }

        int l4;
        byte protocol;
        if (etherType == 0x0800 && frame.Length >= l3 + 20)
        {
            l4 = l3 + ((frame[l3] & 0xF) * 4);
            protocol = frame[l3 + 9];
        }
        else if (etherType == 0x86DD && frame.Length >= l3 + 40)
        {
            l4 = l3 + 40;
            protocol = frame[l3 + 6];
        }
        else
        {
            return false;
        }

        int field = protocol switch
        {
            6 => l4 + TcpChecksumOffset,
            17 => l4 + UdpChecksumOffset,
            _ => -1,
        };
        if (field < 0 || field + 2 > frame.Length)
        {
            return false;
        }

        ulong sum = 0;
        int i = l4;
        for (; i + 1 < frame.Length; i += 2)
        {
            sum += BinaryPrimitives.ReadUInt16BigEndian(frame[i..]);
        }

        if (i < frame.Length)
        {
            sum += (ulong)frame[i] << 8;
        }

        while (sum >> 16 != 0)
        {
            sum = (sum & 0xFFFF) + (sum >> 16);
        }

        ushort result = (ushort)~sum;
        BinaryPrimitives.WriteUInt16BigEndian(frame[field..], result == 0 ? (ushort)0xFFFF : result);
        return true;
    }

    /// <summary>
    /// Where a TCP-over-IPv4 frame's (optionally VLAN-tagged) TCP header starts and its headers
    /// end; false when it is not TCP over IPv4 or its headers do not fit in the frame.
    /// </summary>
    public static bool TryLocateTcpv4(ReadOnlySpan<byte> frame, out int tcp, out int headers)
    {
        tcp = 0;
        headers = 0;
        if (!TryLocateNetworkHeader(frame, out ushort etherType, out int l3)
            || etherType != 0x0800 || frame.Length < l3 + 20 || frame[l3] >> 4 != 4 || (frame[l3] & 0xF) < 5 || frame[l3 + 9] != 6)
        {
            return false;
        }

        tcp = l3 + ((frame[l3] & 0xF) * 4);
        return TryMeasureTcpHeader(frame, tcp, out headers);
    }

    /// <summary>
    /// Where a TCP-over-IPv6 frame's (optionally VLAN-tagged) TCP header starts and its headers
    /// end; false when it is not TCP directly after the IPv6 header (no extension headers, as
    /// Linux sends TSO packets) or its headers do not fit in the frame.
    /// </summary>
    public static bool TryLocateTcpv6(ReadOnlySpan<byte> frame, out int tcp, out int headers)
    {
        tcp = 0;
        headers = 0;
        if (!TryLocateNetworkHeader(frame, out ushort etherType, out int l3)
            || etherType != 0x86DD || frame.Length < l3 + 40 || frame[l3] >> 4 != 6 || frame[l3 + 6] != 6)
        {
            return false;
        }

        tcp = l3 + 40;
        return TryMeasureTcpHeader(frame, tcp, out headers);
    }

    /// <summary>The EtherType and where the network header starts, past an optional 802.1Q tag; false for a runt frame.</summary>
    private static bool TryLocateNetworkHeader(ReadOnlySpan<byte> frame, out ushort etherType, out int l3)
    {
        etherType = 0;
        l3 = 14;
        if (frame.Length < l3)
        {
            return false;
        }

        etherType = BinaryPrimitives.ReadUInt16BigEndian(frame[12..]);
        if (etherType == 0x8100)
        {
            if (frame.Length < 18)
            {
                return false;
            }

            etherType = BinaryPrimitives.ReadUInt16BigEndian(frame[16..]);
            l3 = 18;
        }

        return true;
    }

    /// <summary>The end of the TCP header at <paramref name="tcp"/> (its data offset checked); false when it does not fit.</summary>
    private static bool TryMeasureTcpHeader(ReadOnlySpan<byte> frame, int tcp, out int headers)
    {
        headers = 0;
        if (frame.Length < tcp + 20 || frame[tcp + 12] >> 4 < 5)
        {
            return false;
        }

        headers = tcp + ((frame[tcp + 12] >> 4) * 4);
        return headers <= frame.Length;
    }
}
