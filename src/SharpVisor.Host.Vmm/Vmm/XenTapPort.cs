using System.Buffers.Binary;
using SharpVisor.Devices.Virtio;
using SharpVisor.Interop;
using SharpVisor.Xen;

namespace SharpVisor.Host.Vmm;

/// <summary>
/// netback's port over a TAP interface. The TAP carries a virtio-net header in front of every
/// frame (TapDevice opens it so): all zeros for a plain frame, GSO TCPv4/TCPv6 with NEEDS_CSUM
/// for a large packet the guest sent (feature-gso-tcpv4/-tcpv6). Inbound, the TAP hands over
/// complete, checksummed frames until netback asks for what the connected front end takes
/// (<see cref="SetReceiveOffloads"/>: TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6); then the header says
/// which checksum is partial and which packet is a large TCP one. Its size is set, not assumed:
/// a persistent TAP keeps what its last user (a virtio-net VMM: 12) set.
/// </summary>
public sealed unsafe class XenTapPort : IXenPacketPort, IDisposable
{
    private const int VnetHeaderSize = 12;
    private const byte VnetHeaderNeedsChecksum = 1;
    private const byte VnetHeaderGsoTcpv4 = 1;
    private const byte VnetHeaderGsoTcpv6 = 4;
    private const byte VnetHeaderGsoEcn = 0x80;

    private readonly TapDevice _tap;
    private readonly byte[] _sendBuffer = new byte[VnetHeaderSize + 65536];
    private readonly byte[] _receiveBuffer = new byte[VnetHeaderSize + XenNetBackend.MaxReceiveFrame];

    public XenTapPort(string? name)
    {
        _tap = TapDevice.Open(name ?? "");
        try
        {
            _tap.SetVnetHeaderSize(VnetHeaderSize);
        }
        catch
        {
            _tap.Dispose();
            throw;
        }

        _tap.TrySetOffload(0);
    }

    public string Name => _tap.Name;

    public bool Send(ReadOnlySpan<byte> frame)
    {
        if (frame.Length > _sendBuffer.Length - VnetHeaderSize)
        {
            return false;
        }

        _sendBuffer.AsSpan(0, VnetHeaderSize).Clear();
        frame.CopyTo(_sendBuffer.AsSpan(VnetHeaderSize));
        return _tap.Write(_sendBuffer.AsSpan(0, VnetHeaderSize + frame.Length));
    }

    /// <summary>A large TCP packet with a virtio-net header asking the TAP's kernel side to segment it and fill in the checksums.</summary>
    public bool Send(ReadOnlySpan<byte> packet, XenSegmentationOffload offload)
    {
        if (packet.Length > _sendBuffer.Length - VnetHeaderSize)
        {
            return false;
        }

        Span<byte> header = _sendBuffer.AsSpan(0, VnetHeaderSize);
        header.Clear();
        header[0] = VnetHeaderNeedsChecksum;
        header[1] = offload.Ipv6 ? VnetHeaderGsoTcpv6 : VnetHeaderGsoTcpv4;
        BinaryPrimitives.WriteUInt16LittleEndian(header[2..], offload.HeaderLength);
        BinaryPrimitives.WriteUInt16LittleEndian(header[4..], offload.SegmentSize);
        BinaryPrimitives.WriteUInt16LittleEndian(header[6..], offload.ChecksumStart);
        BinaryPrimitives.WriteUInt16LittleEndian(header[8..], offload.ChecksumOffset);
        packet.CopyTo(_sendBuffer.AsSpan(VnetHeaderSize));

        // The kernel checks the header against the packet (virtio_net_hdr_to_skb): a bad one fails the write, a drop.
        return _tap.Write(_sendBuffer.AsSpan(0, VnetHeaderSize + packet.Length));
    }

    public int Receive(Span<byte> frame) => Receive(frame, out _);

    public int Receive(Span<byte> frame, out XenSegmentationOffload offload)
    {
        offload = default;
        while (true)
        {
            int n = _tap.Read(_receiveBuffer);
            if (n == 0)
            {
                return 0;
            }

            int length = n - VnetHeaderSize;
            if (length > 0 && length <= frame.Length && TryReadOffload(_receiveBuffer.AsSpan(0, VnetHeaderSize + length), out offload))
            {
                _receiveBuffer.AsSpan(VnetHeaderSize, length).CopyTo(frame);
                return length;
            }

            // A runt, an oversized frame or a header we did not ask for: dropped, look at the next one.
        }
    }

    /// <summary>TUN_F_CSUM and TUN_F_TSO4/TSO6 as the front end takes them: the kernel then hands over partial checksums and large TCP packets.</summary>
    public bool SetReceiveOffloads(XenReceiveOffloads offloads)
    {
        uint flags = 0;
        if ((offloads & XenReceiveOffloads.Checksum) != 0)
        {
            flags |= TapDevice.TunFlagChecksum;
            flags |= (offloads & XenReceiveOffloads.TcpV4) != 0 ? TapDevice.TunFlagTso4 : 0;
            flags |= (offloads & XenReceiveOffloads.TcpV6) != 0 ? TapDevice.TunFlagTso6 : 0;
        }

        return _tap.TrySetOffload(flags);
    }

    /// <summary>The virtio-net header of a received frame; false for what netif cannot carry (the TAP was not asked for it).</summary>
    private static bool TryReadOffload(ReadOnlySpan<byte> packet, out XenSegmentationOffload offload)
    {
        offload = default;
        ReadOnlySpan<byte> header = packet[..VnetHeaderSize];
        ReadOnlySpan<byte> frame = packet[VnetHeaderSize..];
        int length = frame.Length;
        byte gsoType = (byte)(header[1] & ~VnetHeaderGsoEcn);
        if ((header[0] & VnetHeaderNeedsChecksum) == 0)
        {
            return gsoType == 0;
        }

        ushort checksumStart = BinaryPrimitives.ReadUInt16LittleEndian(header[6..]);
        ushort checksumOffset = BinaryPrimitives.ReadUInt16LittleEndian(header[8..]);
        if (checksumOffset == 0 || checksumStart + checksumOffset + 2 > length || gsoType is not (0 or VnetHeaderGsoTcpv4 or VnetHeaderGsoTcpv6))
        {
            return false;
        }

        ushort segmentSize = gsoType == 0 ? (ushort)0 : BinaryPrimitives.ReadUInt16LittleEndian(header[4..]);
        if (gsoType != 0 && segmentSize == 0)
        {
            return false;
        }

        // netback needs to know an IPv6 partial checksum (the front end may take IPv4's only).
        ushort etherType = length >= 18 ? BinaryPrimitives.ReadUInt16BigEndian(frame[12..]) : (ushort)0;
        if (etherType == 0x8100)
        {
            etherType = BinaryPrimitives.ReadUInt16BigEndian(frame[16..]);
        }

        offload = new XenSegmentationOffload(segmentSize, BinaryPrimitives.ReadUInt16LittleEndian(header[2..]), checksumStart, checksumOffset,
            gsoType == VnetHeaderGsoTcpv6 || etherType == 0x86DD);
        return true;
    }

    public bool WaitReadable(int timeoutMilliseconds)
    {
        var fd = new PollFd { Fd = _tap.Fd, Events = LibC.POLLIN };
        return LibC.Poll(&fd, 1, timeoutMilliseconds) > 0;
    }

    public void Dispose() => _tap.Dispose();
}
