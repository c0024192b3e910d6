using SharpVisor.Devices.Pci;
using SharpVisor.Machine;
using SharpVisor.Memory;

namespace SharpVisor.Devices.Tests.Pci;

/// <summary>Guest memory, the two buses, an interrupt recorder and PCI bus 0 wired as a VMM would.</summary>
public sealed class TestPlatform : IDisposable
{
    public TestPlatform(ulong ramSize = 16 << 20, PciBusLayout? layout = null)
    {
        Memory = GuestMemory.CreateRam(ramSize);
        Pci = new PciBus(Mmio, Interrupts, layout);
        Pci.Log = new GuestLog(Log.Add);
        PortIo.Register(PciConfigIo.BasePort, PciConfigIo.PortCount, Pci.ConfigIo, "pci-config");
    }

    public GuestMemory Memory { get; }

    public PortIoBus PortIo { get; } = new();

    public MmioBus Mmio { get; } = new();

    public RecordingInterruptController Interrupts { get; } = new();

    public PciBus Pci { get; }

    public List<string> Log { get; } = new();

    /// <summary>A 32-bit configuration read through ports 0xCF8/0xCFC, as a guest does it.</summary>
    public uint ConfigRead32(int slot, int register)
    {
        SelectConfig(slot, register);
        Span<byte> data = stackalloc byte[4];
        PortIo.Read(0xCFC, data);
        return BitConverter.ToUInt32(data);
    }

    public ushort ConfigRead16(int slot, int register)
    {
        SelectConfig(slot, register);
        Span<byte> data = stackalloc byte[2];
        PortIo.Read((ushort)(0xCFC + (register & 2)), data);
        return BitConverter.ToUInt16(data);
    }

    public byte ConfigRead8(int slot, int register)
    {
        SelectConfig(slot, register);
        Span<byte> data = stackalloc byte[1];
        PortIo.Read((ushort)(0xCFC + (register & 3)), data);
        return data[0];
    }

    public void ConfigWrite32(int slot, int register, uint value)
    {
        SelectConfig(slot, register);
        PortIo.Write(0xCFC, BitConverter.GetBytes(value));
    }

    public void ConfigWrite16(int slot, int register, ushort value)
    {
        SelectConfig(slot, register);
        PortIo.Write((ushort)(0xCFC + (register & 2)), BitConverter.GetBytes(value));
    }

    public void ConfigWrite8(int slot, int register, byte value)
    {
        SelectConfig(slot, register);
        PortIo.Write((ushort)(0xCFC + (register & 3)), [value]);
    }

    public uint MmioRead32(ulong address)
    {
        Span<byte> data = stackalloc byte[4];
        Mmio.Read(address, data);
        return BitConverter.ToUInt32(data);
    }

    public void MmioWrite32(ulong address, uint value) => Mmio.Write(address, BitConverter.GetBytes(value));

    public void Dispose() => Memory.Dispose();

    private void SelectConfig(int slot, int register) =>
        PortIo.Write(0xCF8, BitConverter.GetBytes(0x8000_0000u | ((uint)slot << 11) | ((uint)register & 0xFC)));
}
