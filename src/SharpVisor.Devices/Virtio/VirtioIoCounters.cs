namespace SharpVisor.Devices.Virtio;

/// <summary>
/// Requests and bytes a device has moved in each direction — read is device to guest (a disk
/// read, a received frame), write is guest to device — for the control plane's metrics.
/// Updated on the device's worker, read from any thread.
/// </summary>
public sealed class VirtioIoCounters
{
    private long _readRequests;
    private long _readBytes;
    private long _writeRequests;
    private long _writeBytes;

    public long ReadRequests => Interlocked.Read(ref _readRequests);

    public long ReadBytes => Interlocked.Read(ref _readBytes);

    public long WriteRequests => Interlocked.Read(ref _writeRequests);

    public long WriteBytes => Interlocked.Read(ref _writeBytes);

    public void AddRead(long bytes)
    {
        Interlocked.Increment(ref _readRequests);
        Interlocked.Add(ref _readBytes, bytes);
    }

    public void AddWrite(long bytes)
    {
        Interlocked.Increment(ref _writeRequests);
        Interlocked.Add(ref _writeBytes, bytes);
    }
}
