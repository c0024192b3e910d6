namespace SharpVisor.Devices.Virtio.Vsock;

/// <summary>virtio-vsock packet operations (virtio 1.x §5.10.6).</summary>
public enum VsockOp : ushort
{
    Invalid = 0,
    Request = 1,
    Response = 2,
    Reset = 3,
    Shutdown = 4,
    ReadWrite = 5,
    CreditUpdate = 6,
    CreditRequest = 7,
}
