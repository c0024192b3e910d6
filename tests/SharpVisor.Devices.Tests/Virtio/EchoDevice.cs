using SharpVisor.Devices.Virtio;
using SharpVisor.Memory;

namespace SharpVisor.Devices.Tests.Virtio;

/// <summary>A test device with two queues that copies each chain's readable bytes into its writable bytes.</summary>
public sealed class EchoDevice : VirtioDevice
{
    public const ulong FeatureExtra = 1UL << 3;

    private readonly byte[] _config = new byte[8];

    public EchoDevice(GuestMemory memory, ushort queueSize = 16)
        : base((VirtioDeviceType)42, memory, 2, queueSize, FeatureExtra)
    {
    }

    public List<DescriptorChain> Seen { get; } = new();

    public int ActivatedCount { get; private set; }

    public override int ConfigSize => _config.Length;

    public override void ReadConfig(int offset, Span<byte> data) => _config.AsSpan(offset, data.Length).CopyTo(data);

    public override void WriteConfig(int offset, ReadOnlySpan<byte> data) => data.CopyTo(_config.AsSpan(offset));

    public void HostChangesConfig(byte value)
    {
        _config[0] = value;
        ConfigChanged();
    }

    protected override void OnActivated() => ActivatedCount++;

    protected override void ProcessQueue(Virtqueue queue) => DrainQueue(queue, chain =>
    {
        Seen.Add(chain);
        byte[] data = new byte[(int)Math.Min(chain.ReadableLength, chain.WritableLength)];
        chain.CopyFromReadable(0, data);
        return (uint)chain.CopyToWritable(0, data);
    });
}
