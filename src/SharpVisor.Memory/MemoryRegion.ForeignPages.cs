using SharpVisor.Interop;

namespace SharpVisor.Memory;

public sealed partial class MemoryRegion
{
    /// <summary>
    /// Puts page <paramref name="fileOffset"/> of another memory file (another domain's RAM, or
    /// this domain's own) at <paramref name="offset"/> in place of this region's own page: one
    /// MAP_FIXED of that page over the host address, so every pointer to it stays valid and now
    /// reaches the other page. <paramref name="privateCopy"/>: MAP_PRIVATE, so writes through this
    /// mapping go to a private copy and never reach the other file (a read-only grant).
    /// </summary>
    internal void MapForeignPage(ulong offset, int memfd, long fileOffset, bool privateCopy)
    {
        CheckPage(offset);
        int flags = (privateCopy ? LibC.MAP_PRIVATE : LibC.MAP_SHARED) | LibC.MAP_NORESERVE | MapFixed;
        nint target = _host + (nint)offset;
        nint mapped = LibC.Mmap(target, (nuint)PageSize, LibC.PROT_READ | LibC.PROT_WRITE, flags, memfd, fileOffset);
        if (mapped != target)
        {
            LinuxException error = LinuxException.FromLastError($"mmap of a foreign page at 0x{GuestPhysicalAddress + offset:x}");
            RestoreOwnPage(offset);   // MAP_FIXED may have removed the old mapping before failing
            throw error;
        }
    }

    /// <summary>
    /// Maps this region's own page back at <paramref name="offset"/> (its contents are as they were
    /// before the foreign page; an anonymous region's page is a fresh zero page).
    /// </summary>
    internal void RestoreOwnPage(ulong offset)
    {
        CheckPage(offset);
        nint target = _host + (nint)offset;
        nint mapped = _memfd < 0
            ? LibC.Mmap(target, (nuint)PageSize, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_PRIVATE | LibC.MAP_ANONYMOUS | LibC.MAP_NORESERVE | MapFixed, -1, 0)
            : LibC.Mmap(target, (nuint)PageSize, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED | LibC.MAP_NORESERVE | MapFixed, _memfd, (long)offset);
        if (mapped != target)
        {
            throw LinuxException.FromLastError($"mmap of guest page 0x{GuestPhysicalAddress + offset:x} back");
        }
    }

    private void CheckPage(ulong offset)
    {
        if ((offset & (PageSize - 1)) != 0 || offset >= Size || _host == 0)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), $"0x{offset:x} is not a page of region 0x{GuestPhysicalAddress:x}+0x{Size:x}");
        }
    }
}
