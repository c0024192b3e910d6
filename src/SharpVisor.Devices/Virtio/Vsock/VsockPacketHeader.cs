using System.Buffers.Binary;

namespace SharpVisor.Devices.Virtio.Vsock;

/// <summary>
/// struct virtio_vsock_hdr (44 bytes, little-endian): the addresses, the operation, the payload
/// length and the sender's credit (buf_alloc, fwd_cnt). Parsing only copies the fields; every
/// check against the connection and the device's limits is the device's.
/// </summary>
public readonly record struct VsockPacketHeader(
    ulong SourceCid,
    ulong DestinationCid,
    uint SourcePort,
    uint DestinationPort,
    uint Length,
    ushort Type,
    VsockOp Op,
    uint Flags,
    uint BufferAllocation,
    uint ForwardCount)
{
    public const int Size = 44;

    /// <summary>VIRTIO_VSOCK_TYPE_STREAM, the only socket type SharpVisor's device carries.</summary>
    public const ushort TypeStream = 1;

    /// <summary>Shutdown flags: the sender will receive no more, send no more.</summary>
    public const uint ShutdownReceive = 1;
    public const uint ShutdownSend = 2;
    public const uint ShutdownBoth = ShutdownReceive | ShutdownSend;

    public static VsockPacketHeader Read(ReadOnlySpan<byte> b) => new(
        BinaryPrimitives.ReadUInt64LittleEndian(b),
        BinaryPrimitives.ReadUInt64LittleEndian(b[8..]),
        BinaryPrimitives.ReadUInt32LittleEndian(b[16..]),
        BinaryPrimitives.ReadUInt32LittleEndian(b[20..]),
        BinaryPrimitives.ReadUInt32LittleEndian(b[24..]),
        BinaryPrimitives.ReadUInt16LittleEndian(b[28..]),
        (VsockOp)BinaryPrimitives.ReadUInt16LittleEndian(b[30..]),
        BinaryPrimitives.ReadUInt32LittleEndian(b[32..]),
        BinaryPrimitives.ReadUInt32LittleEndian(b[36..]),
        BinaryPrimitives.ReadUInt32LittleEndian(b[40..]));

    public void Write(Span<byte> b)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(b, SourceCid);
        BinaryPrimitives.WriteUInt64LittleEndian(b[8..], DestinationCid);
        BinaryPrimitives.WriteUInt32LittleEndian(b[16..], SourcePort);
        BinaryPrimitives.WriteUInt32LittleEndian(b[20..], DestinationPort);
        BinaryPrimitives.WriteUInt32LittleEndian(b[24..], Length);
        BinaryPrimitives.WriteUInt16LittleEndian(b[28..], Type);
        BinaryPrimitives.WriteUInt16LittleEndian(b[30..], (ushort)Op);
        BinaryPrimitives.WriteUInt32LittleEndian(b[32..], Flags);
        BinaryPrimitives.WriteUInt32LittleEndian(b[36..], BufferAllocation);
        BinaryPrimitives.WriteUInt32LittleEndian(b[40..], ForwardCount);
    }
}
