namespace SharpVisor.Devices.Pci;

/// <summary>
/// One memory Base Address Register of a function: its size (a power of two, at least 4 KiB),
/// width, the address the VMM or the guest placed it at, and where it is mapped on the MMIO bus.
/// </summary>
public sealed class PciBar
{
    internal PciBar(PciDevice owner, int index, ulong size, bool is64Bit, bool prefetchable)
    {
        Owner = owner;
        Index = index;
        Size = size;
        Is64Bit = is64Bit;
        Prefetchable = prefetchable;
        Region = new PciBarRegion(owner, index);
    }

    public PciDevice Owner { get; }

    public int Index { get; }

    public ulong Size { get; }

    public bool Is64Bit { get; }

    public bool Prefetchable { get; }

    /// <summary>The address currently programmed in the register(s); 0 when unassigned.</summary>
    public ulong Address { get; internal set; }

    /// <summary>Where the BAR is registered on the MMIO bus, or null when it does not decode.</summary>
    public ulong? MappedAddress { get; internal set; }

    internal PciBarRegion Region { get; }

    /// <summary>Type bits of the low register: memory, 32/64-bit, prefetchable.</summary>
    internal uint TypeBits => (Is64Bit ? 0b100u : 0u) | (Prefetchable ? 0b1000u : 0u);
}
