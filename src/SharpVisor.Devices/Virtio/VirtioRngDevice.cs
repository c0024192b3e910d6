using System.Security.Cryptography;
using SharpVisor.Memory;

namespace SharpVisor.Devices.Virtio;

/// <summary>virtio-rng (virtio 1.x §5.4): fills the driver's writable buffers from the host CSPRNG.</summary>
public sealed class VirtioRngDevice : VirtioDevice
{
    /// <summary>Bytes served per request at most, so one huge buffer cannot monopolise the worker.</summary>
    public const int MaxBytesPerRequest = 64 * 1024;

    private readonly List<VirtqBuffer> _segments = new();

    public VirtioRngDevice(GuestMemory memory, ushort queueSize = 64)
        : base(VirtioDeviceType.Entropy, memory, 1, queueSize, 0)
    {
    }

    public override int ConfigSize => 0;

    public override void ReadConfig(int offset, Span<byte> data) => data.Clear();

    protected override void ProcessQueue(Virtqueue queue) => DrainQueue(queue, chain =>
    {
        ulong length = Math.Min(chain.WritableLength, MaxBytesPerRequest);
        chain.GetSegments(writable: true, 0, length, _segments);
        foreach (VirtqBuffer s in _segments)
        {
            RandomNumberGenerator.Fill(Memory.GetSpan(s.Address, s.Length));
            Memory.NotifyExternalWrite(s.Address, (ulong)s.Length);
        }

        IoCounters.AddRead((long)length);
        return (uint)length;
    });
}
