namespace SharpVisor.Xen;

/// <summary>
/// A large TCP packet to be cut into <see cref="SegmentSize"/>-byte segments, with its TCP
/// checksum left partial: the field at <see cref="ChecksumStart"/> + <see cref="ChecksumOffset"/>
/// holds the pseudo-header sum. On transmit, what the guest sent with netif's GSO extra info
/// (checked), for the host's port to segment; on receive, what the host's port handed over for
/// the guest (netif's GSO extra info on the rx ring). A TAP carries it as a virtio-net header
/// (VIRTIO_NET_HDR_GSO_TCPV4/TCPV6 with NEEDS_CSUM). On receive, <see cref="SegmentSize"/> 0
/// is a frame of normal size whose checksum only is partial; <c>default</c> a complete frame.
/// </summary>
/// <param name="SegmentSize">gso_size: the TCP payload of each segment.</param>
/// <param name="HeaderLength">Ethernet, IPv4 and TCP headers: where the payload starts.</param>
/// <param name="ChecksumStart">Where the TCP header starts.</param>
/// <param name="ChecksumOffset">The checksum field within the transport header (16 for TCP, 6 for UDP).</param>
/// <param name="Ipv6">TCP over IPv6 rather than IPv4.</param>
public readonly record struct XenSegmentationOffload(ushort SegmentSize, ushort HeaderLength, ushort ChecksumStart, ushort ChecksumOffset, bool Ipv6 = false)
{
    /// <summary>Whether the frame's checksum is partial (anything but a complete frame).</summary>
    public bool IsPartial => ChecksumOffset != 0;
}
