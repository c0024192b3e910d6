namespace SharpVisor.Xen;

/// <summary>
/// A large TCP packet the guest sent for the host to segment (netif's GSO extra info, checked):
/// the host's port cuts it into <see cref="SegmentSize"/>-byte segments and fills in each TCP
/// checksum — the field starting at <see cref="ChecksumStart"/> + <see cref="ChecksumOffset"/>
/// holds the pseudo-header sum. A TAP takes it as a virtio-net header (VIRTIO_NET_HDR_GSO_TCPV4
/// with NEEDS_CSUM).
/// </summary>
/// <param name="SegmentSize">gso_size: the TCP payload of each segment.</param>
/// <param name="HeaderLength">Ethernet, IPv4 and TCP headers: where the payload starts.</param>
/// <param name="ChecksumStart">Where the TCP header starts.</param>
/// <param name="ChecksumOffset">The checksum field within the TCP header (16).</param>
public readonly record struct XenSegmentationOffload(ushort SegmentSize, ushort HeaderLength, ushort ChecksumStart, ushort ChecksumOffset);
