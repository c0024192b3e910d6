using SharpVisor.Memory;

namespace SharpVisor.Emulator.Mmu;

/// <summary>Page-table entries read straight from guest RAM (the guest-physical address is the host's key).</summary>
public readonly struct GuestTableMemory : IPageTableMemory
{
    private readonly GuestMemory _memory;

    public GuestTableMemory(GuestMemory memory)
    {
        _memory = memory;
    }

    public nint MapEntry(ulong physicalAddress, int size, out bool writable)
    {
        MemoryRegion? region = _memory.FindRegion(physicalAddress, (ulong)size);
        if (region is null)
        {
            writable = false;
            return 0;
        }

        writable = !region.ReadOnly;
        return region.HostAddress + (nint)(physicalAddress - region.GuestPhysicalAddress);
    }
}
