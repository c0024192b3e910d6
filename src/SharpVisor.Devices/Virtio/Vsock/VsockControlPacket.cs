namespace SharpVisor.Devices.Virtio.Vsock;

/// <summary>A header-only packet waiting for a guest receive buffer; credit fields are filled when it is written.</summary>
public readonly record struct VsockControlPacket(uint LocalPort, uint PeerPort, VsockOp Op, uint Flags, VsockConnection? Connection);
