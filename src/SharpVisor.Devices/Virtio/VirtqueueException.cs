namespace SharpVisor.Devices.Virtio;

/// <summary>The driver broke the virtqueue rules (bad index, loop, address outside guest memory...).</summary>
public sealed class VirtqueueException : Exception
{
    public VirtqueueException(string message)
        : base(message)
    {
    }
}
