namespace SharpVisor.Devices.Pci;

/// <summary>Device 0 on bus 0: the host bridge. It has no BARs; it identifies the root of the hierarchy.</summary>
public sealed class PciHostBridge : PciDevice
{
    public const ushort IntelVendorId = 0x8086;

    /// <summary>The ID Cloud Hypervisor also uses for its host bridge; Linux has no quirks for it.</summary>
    public const ushort HostBridgeDeviceId = 0x0D57;

    public PciHostBridge()
        : base("host-bridge", new PciDeviceId(IntelVendorId, HostBridgeDeviceId, ClassCode: 0x06, SubClass: 0x00))
    {
    }

    public override void ReadBar(int index, ulong offset, Span<byte> data) => data.Fill(0xFF);

    public override void WriteBar(int index, ulong offset, ReadOnlySpan<byte> data)
    {
    }
}
