namespace SharpVisor.Devices.Virtio;

/// <summary>Feature bits shared by all device types (virtio 1.x §6) — device-specific bits live with each device.</summary>
public static class VirtioFeatures
{
    public const int RingIndirectDescBit = 28;
    public const int RingEventIdxBit = 29;
    public const int Version1Bit = 32;

    public const ulong RingIndirectDesc = 1UL << RingIndirectDescBit;
    public const ulong RingEventIdx = 1UL << RingEventIdxBit;
    public const ulong Version1 = 1UL << Version1Bit;

    /// <summary>What every SharpVisor device offers on top of its own bits.</summary>
    public const ulong Transport = Version1 | RingIndirectDesc | RingEventIdx;
}
