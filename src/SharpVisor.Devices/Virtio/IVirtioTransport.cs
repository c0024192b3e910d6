namespace SharpVisor.Devices.Virtio;

/// <summary>How a device reaches its driver: the transport turns these into MSI-X messages or INTx plus ISR bits.</summary>
public interface IVirtioTransport
{
    /// <summary>The device added used buffers to <paramref name="queue"/> and the ring asks for an interrupt.</summary>
    void SignalQueue(Virtqueue queue);

    /// <summary>The device configuration (or the NEEDS_RESET status bit) changed.</summary>
    void SignalConfigChange();
}
