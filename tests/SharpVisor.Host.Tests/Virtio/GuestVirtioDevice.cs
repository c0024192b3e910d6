using SharpVisor.Machine;

namespace SharpVisor.Host.Tests.Virtio;

/// <summary>
/// Plays Linux's virtio_pci_modern driver for one function: walks the capability list through
/// configuration space to find the common, notify, ISR and device structures in BAR0, negotiates
/// features, sets up queues in guest memory, programs MSI-X and notifies through the MMIO bus.
/// </summary>
public sealed class GuestVirtioDevice
{
    public const byte Acknowledge = 1;
    public const byte Driver = 2;
    public const byte DriverOk = 4;
    public const byte FeaturesOk = 8;
    public const byte NeedsReset = 0x40;
    public const ushort NoVector = 0xFFFF;
    public const ulong Version1 = 1UL << 32;

    /// <summary>The MSI address every vector is pointed at (local APIC 0) and the data base: vector v sends data 0x40 + v.</summary>
    public const ulong MsiAddress = 0xFEE0_0000;
    public const uint MsiDataBase = 0x40;

    private readonly IVirtualMachine _machine;
    private readonly Dictionary<byte, (uint Offset, uint Length)> _capabilities = new();
    private int _msixCapability;

    public GuestVirtioDevice(IVirtualMachine machine, GuestPciBus pci, int slot)
    {
        _machine = machine;
        Pci = pci;
        Slot = slot;
        pci.EnableDevice(slot);
        for (int at = pci.Read8(slot, GuestPciBus.CapabilitiesPointer); at != 0; at = pci.Read8(slot, at + 1))
        {
            byte id = pci.Read8(slot, at);
            if (id == 0x11)
            {
                _msixCapability = at;
            }
            else if (id == 0x09)
            {
                byte type = pci.Read8(slot, at + 3);
                _capabilities.TryAdd(type, (pci.Read32(slot, at + 8), pci.Read32(slot, at + 12)));
                if (type == 2)
                {
                    NotifyMultiplier = pci.Read32(slot, at + 16);
                }
            }
        }
    }

    public GuestPciBus Pci { get; }

    public int Slot { get; }

    public uint NotifyMultiplier { get; }

    public ulong Bar => Pci.BarAddress(Slot, 0);

    public bool HasCapability(byte type) => _capabilities.ContainsKey(type);

    public ulong Common => Bar + _capabilities[1].Offset;

    public ulong DeviceConfig => Bar + _capabilities[4].Offset;

    public byte Status
    {
        get => Pci.Mmio8(Common + 0x14);
        set => Pci.MmioWrite8(Common + 0x14, value);
    }

    public ulong ReadDeviceFeatures()
    {
        Pci.MmioWrite32(Common + 0x00, 0);
        ulong low = Pci.Mmio32(Common + 0x04);
        Pci.MmioWrite32(Common + 0x00, 1);
        return low | ((ulong)Pci.Mmio32(Common + 0x04) << 32);
    }

    /// <summary>Reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK; true when the device kept FEATURES_OK.</summary>
    public bool Negotiate(ulong features)
    {
        Status = 0;
        Status = Acknowledge;
        Status = Acknowledge | Driver;
        Pci.MmioWrite32(Common + 0x08, 0);
        Pci.MmioWrite32(Common + 0x0C, (uint)features);
        Pci.MmioWrite32(Common + 0x08, 1);
        Pci.MmioWrite32(Common + 0x0C, (uint)(features >> 32));
        Status = Acknowledge | Driver | FeaturesOk;
        return (Status & FeaturesOk) != 0;
    }

    /// <summary>Enables MSI-X with <paramref name="vectors"/> vectors pointed at <see cref="MsiAddress"/>, data <see cref="MsiDataBase"/> + v, unmasked.</summary>
    public void EnableMsix(int vectors)
    {
        Pci.Write16(Slot, _msixCapability + 2, 0x8000);
        uint table = Pci.Read32(Slot, _msixCapability + 4);
        ulong tableAddress = Pci.BarAddress(Slot, (int)(table & 7)) + (table & ~7u);
        for (int v = 0; v < vectors; v++)
        {
            ulong entry = tableAddress + (ulong)(16 * v);
            Pci.MmioWrite32(entry, (uint)MsiAddress);
            Pci.MmioWrite32(entry + 4, 0);
            Pci.MmioWrite32(entry + 8, MsiDataBase + (uint)v);
            Pci.MmioWrite32(entry + 12, 0);
        }
    }

    public void SetConfigVector(ushort vector) => Pci.MmioWrite16(Common + 0x10, vector);

    public GuestRing SetupQueue(int queue, ulong ringBase, ushort size, ushort vector = NoVector)
    {
        Pci.MmioWrite16(Common + 0x16, (ushort)queue);
        Pci.MmioWrite16(Common + 0x18, size);
        var ring = new GuestRing(_machine.Memory, ringBase, size);
        Write64(Common + 0x20, ring.DescriptorTable);
        Write64(Common + 0x28, ring.DriverArea);
        Write64(Common + 0x30, ring.DeviceArea);
        Pci.MmioWrite16(Common + 0x1A, vector);
        Pci.MmioWrite16(Common + 0x1C, 1);
        return ring;
    }

    public void SetDriverOk() => Status = Acknowledge | Driver | FeaturesOk | DriverOk;

    public ulong NotifyAddress(int queue)
    {
        Pci.MmioWrite16(Common + 0x16, (ushort)queue);
        ushort notifyOff = Pci.Mmio16(Common + 0x1E);
        return Bar + _capabilities[2].Offset + (notifyOff * NotifyMultiplier);
    }

    public void Notify(int queue) => Pci.MmioWrite16(NotifyAddress(queue), (ushort)queue);

    public byte ReadIsr() => Pci.Mmio8(Bar + _capabilities[3].Offset);

    public uint ReadConfig32(int offset) => Pci.Mmio32(DeviceConfig + (ulong)offset);

    private void Write64(ulong address, ulong value)
    {
        Pci.MmioWrite32(address, (uint)value);
        Pci.MmioWrite32(address + 4, (uint)(value >> 32));
    }
}
