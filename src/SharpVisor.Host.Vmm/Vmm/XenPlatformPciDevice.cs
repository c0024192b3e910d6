using SharpVisor.Devices.Pci;
using SharpVisor.Xen;

namespace SharpVisor.Host.Vmm;

/// <summary>
/// The Xen platform PCI device of an HVM domain (vendor 0x5853 XenSource, device 0x0001, as QEMU's
/// xen-platform): Linux's platform-pci driver binds to it, maps the grant-table frames into its
/// 16 MiB BAR 1 (add_to_physmap) and brings up xenbus. BAR 0 is a small memory BAR where Xen has
/// 256 I/O ports (SharpVisor's PCI bus places memory BARs only; Linux only checks that the
/// resource exists). Its INTx pin is declared but never raised: SharpVisor delivers events by
/// the callback vector, which Linux prefers.
/// </summary>
public sealed class XenPlatformPciDevice : PciDevice
{
    public const ushort XenSourceVendorId = 0x5853;
    public const ushort PlatformDeviceId = 0x0001;
    public const ulong GrantBarSize = 16UL << 20;

    private readonly XenDomain _domain;

    public XenPlatformPciDevice(XenDomain domain)
        : base("xen-platform", new PciDeviceId(XenSourceVendorId, PlatformDeviceId, ClassCode: 0xFF, SubClass: 0x80, RevisionId: 1, SubsystemVendorId: XenSourceVendorId, SubsystemId: PlatformDeviceId))
    {
        ArgumentNullException.ThrowIfNull(domain);
        _domain = domain;
        AddMemoryBar(0, 4096, is64Bit: false);
        AddMemoryBar(1, GrantBarSize, is64Bit: false, prefetchable: true);
        Config.SetByte(PciConfigSpace.InterruptPin, 1);
        BarMappingChanged += OnBarMappingChanged;
    }

    /// <summary>Nothing lives in the BARs themselves: grant frames mapped there are guest memory of their own.</summary>
    public override void ReadBar(int index, ulong offset, Span<byte> data) => data.Fill(0xFF);

    public override void WriteBar(int index, ulong offset, ReadOnlySpan<byte> data)
    {
    }

    /// <summary>The grant-frame window follows BAR 1 while it decodes; without decoding no frame may be placed.</summary>
    private void OnBarMappingChanged(PciBar bar)
    {
        if (bar.Index == 1)
        {
            _domain.SetPlatformMmio(bar.MappedAddress ?? 0, bar.MappedAddress is null ? 0 : bar.Size);
        }
    }
}
