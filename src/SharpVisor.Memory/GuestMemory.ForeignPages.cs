using SharpVisor.Interop;

namespace SharpVisor.Memory;

public sealed partial class GuestMemory
{
    /// <summary>
    /// The memory file and offset behind the guest page at <paramref name="address"/> (a page of
    /// a region): what another domain maps to share it (a Xen grant mapping). False for an
    /// address no region holds, or a map target's (it has no file: nothing of its own to share).
    /// </summary>
    public bool TryGetPageFile(ulong address, out int memfd, out long fileOffset)
    {
        MemoryRegion? r = (address & (MemoryRegion.PageSize - 1)) == 0 ? FindRegion(address, MemoryRegion.PageSize) : null;
        if (r is null || r.MemFd < 0)
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
    /// Shows page <paramref name="fileOffset"/> of <paramref name="memfd"/> at the RAM page (or map
    /// target, <see cref="AddMapTargetPage"/>) <paramref name="address"/> instead of the guest's own page (docs/xen.md, "Grant mapping"):
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

    /// <summary>
    /// Adds a one-page region at <paramref name="address"/>, outside every other region, for
    /// <see cref="TryMapForeignPage"/> to show another file's page there (a Xen grant map into
    /// unpopulated address space). Its own page is private anonymous memory — zeros, no file
    /// descriptor — and a fresh zero page again after each unmap. Added like any region (<see cref="RegionAdded"/>:
    /// the nested MMU learns of it); never removed, so a later map at the same page reuses it.
    /// The caller bounds how many it adds. Throws <see cref="ArgumentException"/> on an overlap.
    /// </summary>
    public MemoryRegion AddMapTargetPage(ulong address)
    {
        if ((address & (MemoryRegion.PageSize - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(address), $"0x{address:x} is not page-aligned");
        }

        return AddRegion(address, MemoryRegion.PageSize, readOnly: false, "sharpvisor-map-target", countAsRam: false, mapTarget: true);
    }

    /// <summary>How many map-target pages (<see cref="AddMapTargetPage"/>) exist.</summary>
    public int MapTargetPageCount => Volatile.Read(ref _regions).Count(r => r.IsMapTarget);

    private MemoryRegion RamPage(ulong address)
    {
        MemoryRegion? r = (address & (MemoryRegion.PageSize - 1)) == 0 ? FindRegion(address, MemoryRegion.PageSize) : null;
        if (r is null || !(r.IsRam || r.IsMapTarget))
        {
            throw new ArgumentOutOfRangeException(nameof(address), $"0x{address:x} is not a page of guest RAM or a map target");
        }

        return r;
    }
}
