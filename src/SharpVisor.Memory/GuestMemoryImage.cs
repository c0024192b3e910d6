namespace SharpVisor.Memory;

/// <summary>
/// A snapshot's memory file: the guest's RAM regions one after the other in address order (the
/// region below the MMIO hole at offset 0, the one from 4 GiB right after it), as a sparse file —
/// pages that are all zeros are holes, never written. A diff image holds only the pages a
/// filter selects and is laid over its base image on restore.
/// </summary>
public static unsafe class GuestMemoryImage
{
    private const int RunLimit = 1 << 20;
    private const int PageSize = (int)MemoryRegion.PageSize;

    /// <summary>
    /// Writes the RAM of <paramref name="memory"/> to <paramref name="path"/>. With
    /// <paramref name="includePage"/> (a diff) only the pages it accepts (by guest-physical
    /// address) are written, zero or not. Returns the bytes written (the file's data, not its size).
    /// </summary>
    public static long Save(GuestMemory memory, string path, Func<ulong, bool>? includePage = null)
    {
        long written = 0;
        using (var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            ulong fileOffset = 0;
            foreach (MemoryRegion region in memory.Regions.Where(r => r.IsRam))
            {
                ulong runStart = 0;
                int runLength = 0;
                for (ulong offset = 0; offset < region.Size; offset += (ulong)PageSize)
                {
                    var page = new ReadOnlySpan<byte>((void*)(region.HostAddress + (nint)offset), PageSize);
                    bool wanted = includePage is null ? page.IndexOfAnyExcept((byte)0) >= 0 : includePage(region.GuestPhysicalAddress + offset);
                    if (wanted && runLength > 0 && runStart + (ulong)runLength == offset && runLength < RunLimit)
                    {
                        runLength += PageSize;
                        continue;
                    }

                    written += Flush(stream, region, runStart, runLength, fileOffset);
                    (runStart, runLength) = wanted ? (offset, PageSize) : (0UL, 0);
                }

                written += Flush(stream, region, runStart, runLength, fileOffset);
                fileOffset += region.Size;
            }

            stream.SetLength((long)fileOffset);
            stream.Flush(flushToDisk: true);
        }

        return written;
    }

    /// <summary>
    /// Fills the RAM of <paramref name="memory"/> from a full image (every byte replaced), or lays
    /// a diff image over it: only the pages <paramref name="diffPages"/> names (the list the diff's
    /// state file carries) are copied, the others keep what is there.
    /// </summary>
    public static void Load(GuestMemory memory, string path, Func<ulong, bool>? diffPages = null)
    {
        using var handle = OpenImage(memory, path);
        byte[] buffer = new byte[RunLimit];
        long fileOffset = 0;
        foreach (MemoryRegion region in memory.Regions.Where(r => r.IsRam))
        {
            ulong offset = 0;
            while (offset < region.Size)
            {
                int length = (int)Math.Min((ulong)RunLimit, region.Size - offset);
                if (diffPages is null)
                {
                    LoadChunk(handle, region, offset, length, fileOffset + (long)offset, path, buffer);
                }
                else
                {
                    for (int page = 0; page < length; page += PageSize)
                    {
                        ulong at = offset + (ulong)page;
                        if (diffPages(region.GuestPhysicalAddress + at))
                        {
                            ReadExactly(handle, new Span<byte>((void*)(region.HostAddress + (nint)at), PageSize), fileOffset + (long)at, path);
                        }
                    }
                }

                offset += (ulong)length;
            }

            fileOffset += (long)region.Size;
        }
    }

    /// <summary>
    /// Lays a diff image over its base in place (what Firecracker's rebase-snap does): the pages
    /// <paramref name="diffPages"/> names (guest-physical addresses, the list the diff's state file
    /// carries) are copied from <paramref name="diffPath"/> into <paramref name="basePath"/> at the
    /// same offsets; the base then is the full image of the diff's instant. Both files must be
    /// <paramref name="ramSize"/> bytes. Returns the pages copied.
    /// </summary>
    public static int Rebase(string basePath, string diffPath, ulong ramSize, IEnumerable<ulong> diffPages)
    {
        using var diff = OpenSized(diffPath, FileAccess.Read, ramSize);
        using var target = OpenSized(basePath, FileAccess.ReadWrite, ramSize);
        byte[] page = new byte[PageSize];
        int count = 0;
        foreach (ulong address in diffPages)
        {
            long offset = FileOffsetOf(address, ramSize) ?? throw new IOException($"diff page 0x{address:x} is outside the {ramSize} bytes of RAM");
            ReadExactly(diff, page, offset, diffPath);
            RandomAccess.Write(target, page, offset);
            count++;
        }

        RandomAccess.FlushToDisk(target);
        return count;
    }

    /// <summary>Where the page at guest-physical <paramref name="address"/> is in an image of <paramref name="ramSize"/> bytes of RAM (regions in address order); null when it is not RAM.</summary>
    public static long? FileOffsetOf(ulong address, ulong ramSize)
    {
        ulong low = Math.Min(ramSize, GuestMemory.MmioHoleStart);
        if ((address & (ulong)(PageSize - 1)) != 0)
        {
            return null;
        }

        if (address < low)
        {
            return (long)address;
        }

        return address >= GuestMemory.HighMemoryStart && address - GuestMemory.HighMemoryStart < ramSize - low
            ? (long)(low + (address - GuestMemory.HighMemoryStart))
            : null;
    }

    private static Microsoft.Win32.SafeHandles.SafeFileHandle OpenSized(string path, FileAccess access, ulong size)
    {
        Microsoft.Win32.SafeHandles.SafeFileHandle handle;
        try
        {
            handle = File.OpenHandle(path, FileMode.Open, access);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"cannot open memory file {path}: {e.Message}", e);
        }

        long length = RandomAccess.GetLength(handle);
        if ((ulong)length != size)
        {
            handle.Dispose();
            throw new IOException($"memory file {path} is {length} bytes; the snapshot's RAM is {size} bytes");
        }

        return handle;
    }

    private static Microsoft.Win32.SafeHandles.SafeFileHandle OpenImage(GuestMemory memory, string path)
    {
        Microsoft.Win32.SafeHandles.SafeFileHandle handle;
        try
        {
            handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"cannot open memory file {path}: {e.Message}", e);
        }

        ulong ram = (ulong)memory.Regions.Where(r => r.IsRam).Sum(r => (long)r.Size);
        long length = RandomAccess.GetLength(handle);
        if ((ulong)length != ram)
        {
            handle.Dispose();
            throw new IOException($"memory file {path} is {length} bytes; the machine has {ram} bytes of RAM");
        }

        return handle;
    }

    /// <summary>
    /// One chunk of a full image: data is copied; a chunk of holes (all zeros) is not copied but
    /// punched out of the guest's memfd, so the zero pages of a restored guest take no host memory.
    /// </summary>
    private static void LoadChunk(Microsoft.Win32.SafeHandles.SafeFileHandle handle, MemoryRegion region, ulong offset, int length, long fileOffset, string path, byte[] buffer)
    {
        Span<byte> data = buffer.AsSpan(0, length);
        ReadExactly(handle, data, fileOffset, path);
        var target = new Span<byte>((void*)(region.HostAddress + (nint)offset), length);
        if (data.IndexOfAnyExcept((byte)0) < 0
            && SharpVisor.Interop.LibC.Madvise(region.HostAddress + (nint)offset, (nuint)length, SharpVisor.Interop.LibC.MADV_REMOVE) == 0)
        {
            return;
        }

        data.CopyTo(target);
    }

    private static void ReadExactly(Microsoft.Win32.SafeHandles.SafeFileHandle handle, Span<byte> target, long offset, string path)
    {
        while (!target.IsEmpty)
        {
            int read = RandomAccess.Read(handle, target, offset);
            if (read <= 0)
            {
                throw new IOException($"memory file {path} ended early at byte {offset}");
            }

            target = target[read..];
            offset += read;
        }
    }

    private static long Flush(FileStream stream, MemoryRegion region, ulong runStart, int runLength, ulong fileOffset)
    {
        if (runLength == 0)
        {
            return 0;
        }

        RandomAccess.Write(stream.SafeFileHandle, new ReadOnlySpan<byte>((void*)(region.HostAddress + (nint)runStart), runLength), (long)(fileOffset + runStart));
        return runLength;
    }
}
