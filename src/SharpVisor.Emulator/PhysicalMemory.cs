using SharpVisor.Memory;

namespace SharpVisor.Emulator;

/// <summary>
/// The physical address space as the CPU sees it: guest RAM (host pointers for the TLB fast
/// path) and, for everything else, an optional MMIO handler.
/// </summary>
public sealed class PhysicalMemory
{
    public PhysicalMemory(GuestMemory ram, IMmioHandler? mmio = null)
    {
        Ram = ram;
        Mmio = mmio;
    }

    public GuestMemory Ram { get; }

    public IMmioHandler? Mmio { get; set; }

    /// <summary>Host address of a 4 KiB physical page of RAM; false for holes and (when writing) read-only regions.</summary>
    public bool TryGetRamPage(ulong physicalPage, bool write, out nint host)
    {
        MemoryRegion? region = Ram.FindRegion(physicalPage, MemoryRegion.PageSize);
        if (region is null || (write && region.ReadOnly))
        {
            host = 0;
            return false;
        }

        host = region.HostAddress + (nint)(physicalPage - region.GuestPhysicalAddress);
        return true;
    }
}
