namespace SharpVisor.Xen;

/// <summary>
/// What netback needs of the host's side of a NIC: whole Ethernet frames out and in (the host's
/// TAP is one; tests use queues). Failures to send are drops, as on a wire.
/// </summary>
public interface IXenPacketPort
{
    /// <summary>Sends one frame; false when it was dropped.</summary>
    bool Send(ReadOnlySpan<byte> frame);

    /// <summary>Sends one large TCP packet for the host to segment (<paramref name="offload"/>); false when it was dropped.</summary>
    bool Send(ReadOnlySpan<byte> packet, XenSegmentationOffload offload);

    /// <summary>Reads one waiting frame into <paramref name="frame"/>; 0 when none is waiting.</summary>
    int Receive(Span<byte> frame);

    /// <summary>
    /// Reads one waiting frame and what is left to do on it (a partial checksum, a large TCP
    /// packet: only what <see cref="SetReceiveOffloads"/> allowed); 0 when none is waiting.
    /// </summary>
    int Receive(Span<byte> frame, out XenSegmentationOffload offload)
    {
        offload = default;
        return Receive(frame);
    }

    /// <summary>Asks for frames with these offloads from now on; false when the port cannot (it then hands over complete frames).</summary>
    bool SetReceiveOffloads(XenReceiveOffloads offloads) => offloads == XenReceiveOffloads.None;

    /// <summary>Waits up to <paramref name="timeoutMilliseconds"/> for a frame; true when one may be waiting.</summary>
    bool WaitReadable(int timeoutMilliseconds);
}
