using SharpVisor.Interop;

namespace SharpVisor.Memory;

public sealed partial class GuestMemory
{
    /// <summary>
    /// The memory file and offset behind the guest page at <paramref name="address"/> (a page of
    /// a region): what another domain maps to share it (a Xen grant mapping). False for an
    /// address no region holds.
    /// </summary>
    public bool TryGetPageFile(ulong address, out int memfd, out long fileOffset)
    {
        MemoryRegion? r = (address & (MemoryRegion.PageSize - 1)) == 0 ? FindRegion(address, MemoryRegion.PageSize) : null;
        if (r is null)
        {
            memfd = -1;
            fileOffset = 0;
            return false;
        }

        memfd = r.MemFd;
        fileOffset = (long)(address - r.GuestPhysicalAddress);
        return true;
    }

    /// <summary>
    /// Shows page <paramref name="fileOffset"/> of <paramref name="memfd"/> at the RAM page
    /// <paramref name="address"/> instead of the guest's own page (docs/xen.md, "Grant mapping"):
    /// the host address stays the same, so the CPUs' cached translations and the devices' spans
    /// reach the new page at once. <paramref name="readOnly"/>: the page is mapped copy-on-write,
    /// so no write through this memory — the guest's, a device's, the VMM's — reaches the other
    /// file. The guest page's own contents are kept for <see cref="TryRestoreOwnPage"/>. False when
    /// the host refused the mapping (the guest's own page is then still there).
    /// </summary>
    public bool TryMapForeignPage(ulong address, int memfd, long fileOffset, bool readOnly)
    {
        MemoryRegion r = RamPage(address);
        try
        {
            r.MapForeignPage(address - r.GuestPhysicalAddress, memfd, fileOffset, readOnly);
        }
        catch (LinuxException)
        {
            return false;
        }

        NotifyExternalWrite(address, MemoryRegion.PageSize);   // new contents: code decoded from the page is stale
        return true;
    }

    /// <summary>Puts the guest's own page back at <paramref name="address"/> after <see cref="TryMapForeignPage"/>; false when the host refused.</summary>
    public bool TryRestoreOwnPage(ulong address)
    {
        MemoryRegion r = RamPage(address);
        try
        {
            r.RestoreOwnPage(address - r.GuestPhysicalAddress);
        }
        catch (LinuxException)
        {
            return false;
        }

        NotifyExternalWrite(address, MemoryRegion.PageSize);
        return true;
    }

    private MemoryRegion RamPage(ulong address)
    {
        MemoryRegion? r = (address & (MemoryRegion.PageSize - 1)) == 0 ? FindRegion(address, MemoryRegion.PageSize) : null;
        if (r is null || !r.IsRam)
        {
            throw new ArgumentOutOfRangeException(nameof(address), $"0x{address:x} is not a page of guest RAM");
        }

        return r;
    }
}
