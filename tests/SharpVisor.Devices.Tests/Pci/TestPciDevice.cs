using SharpVisor.Devices.Pci;

namespace SharpVisor.Devices.Tests.Pci;

/// <summary>A PCI function with a 32-bit 4 KiB register BAR (0) and a 64-bit 16 KiB BAR (2) holding an MSI-X table.</summary>
public sealed class TestPciDevice : PciDevice
{
    public TestPciDevice(string name = "test", int vectors = 4)
        : base(name, new PciDeviceId(0x1234, 0x5678, ClassCode: 0xFF, SubClass: 0))
    {
        Config.SetByte(PciConfigSpace.InterruptPin, 1);
        Registers = AddMemoryBar(0, 0x1000, is64Bit: false);
        MsixBar = AddMemoryBar(2, 0x4000, is64Bit: true);
        int offset = AddCapability(MsixCapability.CapabilityId, MsixCapability.CapabilityLength);
        Msix = new MsixCapability(this, offset, vectors, 2, 0, 0x2000);
    }

    public PciBar Registers { get; }

    public PciBar MsixBar { get; }

    public MsixCapability Msix { get; }

    public byte[] RegisterFile { get; } = new byte[0x1000];

    public override void ReadBar(int index, ulong offset, Span<byte> data)
    {
        if (index == 0)
        {
            RegisterFile.AsSpan((int)offset, data.Length).CopyTo(data);
        }
        else if (offset < 0x2000)
        {
            Msix.ReadTable(offset, data);
        }
        else
        {
            Msix.ReadPba(offset - 0x2000, data);
        }
    }

    public override void WriteBar(int index, ulong offset, ReadOnlySpan<byte> data)
    {
        if (index == 0)
        {
            data.CopyTo(RegisterFile.AsSpan((int)offset));
        }
        else if (offset < 0x2000)
        {
            Msix.WriteTable(offset, data);
        }
    }

    protected override void OnConfigWritten(int offset, int length)
    {
        if (Msix.Covers(offset, length))
        {
            Msix.OnControlWritten();
        }
    }
}
