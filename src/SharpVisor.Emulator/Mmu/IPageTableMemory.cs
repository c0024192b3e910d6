namespace SharpVisor.Emulator.Mmu;

/// <summary>
/// Where the page walker reads (and sets accessed/dirty bits in) the guest's page-table
/// entries: guest RAM directly (shadow mode) or through the second-level table (nested mode).
/// Implemented by structs so that the walker is specialized per mode.
/// </summary>
public interface IPageTableMemory
{
    /// <summary>
    /// The host address of the naturally aligned entry of <paramref name="size"/> bytes at
    /// <paramref name="physicalAddress"/>, or 0 when no readable RAM backs it (the walker then
    /// reads all-ones, as unbacked physical memory does).
    /// </summary>
    /// <param name="writable">Whether accessed/dirty updates may be stored (false for read-only regions).</param>
    nint MapEntry(ulong physicalAddress, int size, out bool writable);
}
