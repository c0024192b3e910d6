namespace SharpVisor.Devices.Pci;

/// <summary>A range of guest physical addresses the host bridge forwards to PCI devices.</summary>
public readonly record struct PciWindow(ulong Start, ulong Size)
{
    public ulong End => Start + Size;

    public bool Contains(ulong address, ulong length) =>
        address >= Start && length <= Size && address - Start <= Size - length;
}
