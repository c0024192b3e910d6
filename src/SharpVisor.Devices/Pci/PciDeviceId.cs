namespace SharpVisor.Devices.Pci;

/// <summary>The identity fields of a type 0 header.</summary>
public readonly record struct PciDeviceId(
    ushort VendorId,
    ushort DeviceId,
    byte ClassCode,
    byte SubClass,
    byte ProgIf = 0,
    byte RevisionId = 0,
    ushort SubsystemVendorId = 0,
    ushort SubsystemId = 0);
