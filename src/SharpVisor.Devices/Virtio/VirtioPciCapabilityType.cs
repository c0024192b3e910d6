namespace SharpVisor.Devices.Virtio;

/// <summary>cfg_type of a virtio vendor-specific PCI capability (virtio 1.x §4.1.4).</summary>
public enum VirtioPciCapabilityType : byte
{
    CommonConfig = 1,
    NotifyConfig = 2,
    IsrConfig = 3,
    DeviceConfig = 4,
    PciConfig = 5,
}
