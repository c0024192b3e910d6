using SharpVisor.Machine;

namespace SharpVisor.Devices.Pci;

/// <summary>The MMIO-bus face of one BAR: forwards accesses to the owning function with the BAR index.</summary>
internal sealed class PciBarRegion : IMmioDevice
{
    private readonly PciDevice _owner;
    private readonly int _index;

    public PciBarRegion(PciDevice owner, int index)
    {
        _owner = owner;
        _index = index;
    }

    public void Read(ulong offset, Span<byte> data) => _owner.ReadBar(_index, offset, data);

    public void Write(ulong offset, ReadOnlySpan<byte> data) => _owner.WriteBar(_index, offset, data);
}
