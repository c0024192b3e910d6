using SharpVisor.Memory;

namespace SharpVisor.Emulator.Mmu;

/// <summary>Guest page-table entries read from RAM and never updated: a walk for the VMM's own look that sets no accessed or dirty bit.</summary>
public readonly struct ProbeTableMemory : IPageTableMemory
{
    private readonly GuestTableMemory _memory;

    public ProbeTableMemory(GuestMemory memory)
    {
        _memory = new GuestTableMemory(memory);
    }

    public nint MapEntry(ulong physicalAddress, int size, out bool writable)
    {
        nint host = _memory.MapEntry(physicalAddress, size, out _);
        writable = false;
        return host;
    }
}
