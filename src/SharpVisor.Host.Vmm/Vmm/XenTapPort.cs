using System.Buffers.Binary;
using SharpVisor.Devices.Virtio;
using SharpVisor.Interop;
using SharpVisor.Xen;

namespace SharpVisor.Host.Vmm;

/// <summary>
/// netback's port over a TAP interface. The TAP carries a virtio-net header in front of every
/// frame (TapDevice opens it so): all zeros for a plain frame, GSO TCPv4 with NEEDS_CSUM for a
/// large packet the guest sent (feature-gso-tcpv4); inbound it is ignored, and the TAP is told to
/// hand over only complete, checksummed frames (no GSO towards the guest yet). Its size is
/// set, not assumed: a persistent TAP keeps what its last user (a virtio-net VMM: 12) set.
/// </summary>
public sealed unsafe class XenTapPort : IXenPacketPort, IDisposable
{
    private const int VnetHeaderSize = 12;
    private const byte VnetHeaderNeedsChecksum = 1;
    private const byte VnetHeaderGsoTcpv4 = 1;

    private readonly TapDevice _tap;
    private readonly byte[] _sendBuffer = new byte[VnetHeaderSize + 65536];
    private readonly byte[] _receiveBuffer = new byte[VnetHeaderSize + 65536];

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
        header[1] = VnetHeaderGsoTcpv4;
        BinaryPrimitives.WriteUInt16LittleEndian(header[2..], offload.HeaderLength);
        BinaryPrimitives.WriteUInt16LittleEndian(header[4..], offload.SegmentSize);
        BinaryPrimitives.WriteUInt16LittleEndian(header[6..], offload.ChecksumStart);
        BinaryPrimitives.WriteUInt16LittleEndian(header[8..], offload.ChecksumOffset);
        packet.CopyTo(_sendBuffer.AsSpan(VnetHeaderSize));

        // The kernel checks the header against the packet (virtio_net_hdr_to_skb): a bad one fails the write, a drop.
        return _tap.Write(_sendBuffer.AsSpan(0, VnetHeaderSize + packet.Length));
    }

    public int Receive(Span<byte> frame)
    {
        while (true)
        {
            int n = _tap.Read(_receiveBuffer);
            if (n == 0)
            {
                return 0;
            }

            int length = n - VnetHeaderSize;
            if (length > 0 && length <= frame.Length)
            {
                _receiveBuffer.AsSpan(VnetHeaderSize, length).CopyTo(frame);
                return length;
            }

            // A runt or an oversized frame: dropped, look at the next one.
        }
    }

    public bool WaitReadable(int timeoutMilliseconds)
    {
        var fd = new PollFd { Fd = _tap.Fd, Events = LibC.POLLIN };
        return LibC.Poll(&fd, 1, timeoutMilliseconds) > 0;
    }

    public void Dispose() => _tap.Dispose();
}
