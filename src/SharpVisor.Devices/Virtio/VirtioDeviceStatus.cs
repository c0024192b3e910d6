namespace SharpVisor.Devices.Virtio;

/// <summary>The device status field (virtio 1.x §2.1).</summary>
[Flags]
public enum VirtioDeviceStatus : byte
{
    None = 0,
    Acknowledge = 1,
    Driver = 2,
    DriverOk = 4,
    FeaturesOk = 8,
    DeviceNeedsReset = 0x40,
    Failed = 0x80,
}
