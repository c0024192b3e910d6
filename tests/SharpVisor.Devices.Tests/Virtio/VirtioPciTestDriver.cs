using SharpVisor.Devices.Pci;
using SharpVisor.Devices.Tests.Pci;
using SharpVisor.Devices.Virtio;

namespace SharpVisor.Devices.Tests.Virtio;

/// <summary>
/// Plays the guest's virtio-pci driver: finds the capabilities through configuration space,
/// then negotiates and sets up queues through BAR0 on the MMIO bus, as Linux's virtio_pci_modern does.
/// </summary>
public sealed class VirtioPciTestDriver
{
    private readonly TestPlatform _p;
    private readonly Dictionary<VirtioPciCapabilityType, (int Bar, uint Offset, uint Length, int At)> _caps = new();

    public VirtioPciTestDriver(TestPlatform platform, int slot)
    {
        _p = platform;
        Slot = slot;
        platform.ConfigWrite16(slot, PciConfigSpace.Command, PciConfigSpace.CommandMemorySpace | PciConfigSpace.CommandBusMaster);
        for (int at = platform.ConfigRead8(slot, PciConfigSpace.CapabilitiesPointer); at != 0; at = platform.ConfigRead8(slot, at + 1))
        {
            byte id = platform.ConfigRead8(slot, at);
            if (id == MsixCapability.CapabilityId)
            {
                MsixCapabilityOffset = at;
            }
            else if (id == VirtioPciDevice.VendorCapabilityId)
            {
                var type = (VirtioPciCapabilityType)platform.ConfigRead8(slot, at + 3);
                _caps.TryAdd(type, (platform.ConfigRead8(slot, at + 4), platform.ConfigRead32(slot, at + 8), platform.ConfigRead32(slot, at + 12), at));
                if (type == VirtioPciCapabilityType.NotifyConfig)
                {
                    NotifyMultiplier = platform.ConfigRead32(slot, at + 16);
                }
            }
        }

        BarAddress = (platform.ConfigRead32(slot, 0x10) & ~0xFu) | ((ulong)platform.ConfigRead32(slot, 0x14) << 32);
    }

    public int Slot { get; }

    public ulong BarAddress { get; }

    public int MsixCapabilityOffset { get; }

    public uint NotifyMultiplier { get; }

    public IReadOnlyDictionary<VirtioPciCapabilityType, (int Bar, uint Offset, uint Length, int At)> Capabilities => _caps;

    public ulong Common => BarAddress + _caps[VirtioPciCapabilityType.CommonConfig].Offset;

    public ulong DeviceConfig => BarAddress + _caps[VirtioPciCapabilityType.DeviceConfig].Offset;

    public byte Status
    {
        get => Read8(Common + 0x14);
        set => Write8(Common + 0x14, value);
    }

    public byte ConfigGeneration => Read8(Common + 0x15);

    public ushort NumQueues => Read16(Common + 0x12);

    public byte Read8(ulong address)
    {
        Span<byte> b = stackalloc byte[1];
        _p.Mmio.Read(address, b);
        return b[0];
    }

    public ushort Read16(ulong address)
    {
        Span<byte> b = stackalloc byte[2];
        _p.Mmio.Read(address, b);
        return BitConverter.ToUInt16(b);
    }

    public uint Read32(ulong address) => _p.MmioRead32(address);

    public ulong Read64(ulong address) => Read32(address) | ((ulong)Read32(address + 4) << 32);

    public void Write8(ulong address, byte value) => _p.Mmio.Write(address, [value]);

    public void Write16(ulong address, ushort value) => _p.Mmio.Write(address, BitConverter.GetBytes(value));

    public void Write32(ulong address, uint value) => _p.MmioWrite32(address, value);

    /// <summary>The Linux way: two 32-bit halves.</summary>
    public void Write64(ulong address, ulong value)
    {
        Write32(address, (uint)value);
        Write32(address + 4, (uint)(value >> 32));
    }

    public ulong ReadDeviceFeatures()
    {
        Write32(Common + 0x00, 0);
        ulong low = Read32(Common + 0x04);
        Write32(Common + 0x00, 1);
        return low | ((ulong)Read32(Common + 0x04) << 32);
    }

    /// <summary>Reset, ACKNOWLEDGE, DRIVER, write features, FEATURES_OK; returns whether FEATURES_OK stuck.</summary>
    public bool Negotiate(ulong features)
    {
        Status = 0;
        Status = (byte)VirtioDeviceStatus.Acknowledge;
        Status = (byte)(VirtioDeviceStatus.Acknowledge | VirtioDeviceStatus.Driver);
        Write32(Common + 0x08, 0);
        Write32(Common + 0x0C, (uint)features);
        Write32(Common + 0x08, 1);
        Write32(Common + 0x0C, (uint)(features >> 32));
        Status = (byte)(VirtioDeviceStatus.Acknowledge | VirtioDeviceStatus.Driver | VirtioDeviceStatus.FeaturesOk);
        return (Status & (byte)VirtioDeviceStatus.FeaturesOk) != 0;
    }

    public DriverRing SetupQueue(int queue, ulong ringBase, ushort size, ushort msixVector = Virtqueue.NoVector)
    {
        Write16(Common + 0x16, (ushort)queue);
        Write16(Common + 0x18, size);
        var ring = new DriverRing(_p.Memory, ringBase, size);
        Write64(Common + 0x20, ring.DescriptorTable);
        Write64(Common + 0x28, ring.DriverArea);
        Write64(Common + 0x30, ring.DeviceArea);
        Write16(Common + 0x1A, msixVector);
        Write16(Common + 0x1C, 1);
        return ring;
    }

    public void DriverOk() =>
        Status = (byte)(VirtioDeviceStatus.Acknowledge | VirtioDeviceStatus.Driver | VirtioDeviceStatus.FeaturesOk | VirtioDeviceStatus.DriverOk);

    public ulong NotifyAddress(int queue)
    {
        Write16(Common + 0x16, (ushort)queue);
        ushort notifyOff = Read16(Common + 0x1E);
        return BarAddress + _caps[VirtioPciCapabilityType.NotifyConfig].Offset + (notifyOff * NotifyMultiplier);
    }

    public void Notify(int queue) => Write16(NotifyAddress(queue), (ushort)queue);

    public byte ReadIsr() => Read8(BarAddress + _caps[VirtioPciCapabilityType.IsrConfig].Offset);

    /// <summary>Enables MSI-X and points vector v at 0xFEE00000 with data 0x40 + v, unmasked.</summary>
    public void EnableMsix(int vectors)
    {
        _p.ConfigWrite16(Slot, MsixCapabilityOffset + 2, MsixCapability.ControlEnable);
        uint tableOffset = _p.ConfigRead32(Slot, MsixCapabilityOffset + 4) & ~7u;
        for (int v = 0; v < vectors; v++)
        {
            ulong entry = BarAddress + tableOffset + (ulong)(16 * v);
            Write32(entry, 0xFEE0_0000);
            Write32(entry + 4, 0);
            Write32(entry + 8, (uint)(0x40 + v));
            Write32(entry + 12, 0);
        }
    }
}
