namespace SharpVisor.Devices.Virtio;

/// <summary>
/// Sees each frame the guest sends on a virtio-net NIC before the TAP does. Returning true
/// takes the frame (it does not reach the TAP); frames passed to <paramref name="reply"/> are
/// delivered to the guest as received frames. Firecracker's MMDS answers the guest this way.
/// </summary>
public delegate bool FrameInterceptor(ReadOnlySpan<byte> frame, Action<byte[]> reply);
