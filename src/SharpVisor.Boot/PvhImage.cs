namespace SharpVisor.Boot;

/// <summary>
/// A Linux kernel as a PVH guest sees it: the ELF vmlinux (taken out of a bzImage's payload when
/// given one) and its PVH entry point, the XEN_ELFNOTE_PHYS32_ENTRY note.
/// </summary>
public sealed class PvhImage
{
    private PvhImage(string path, byte[] vmlinux, ElfFile elf, uint entry, string source)
    {
        Path = path;
        Vmlinux = vmlinux;
        Elf = elf;
        Entry = entry;
        Source = source;
    }

    public string Path { get; }

    public byte[] Vmlinux { get; }

    public ElfFile Elf { get; }

    /// <summary>The 32-bit physical entry point (pvh_start_xen).</summary>
    public uint Entry { get; }

    /// <summary>"bzImage, LZ4 payload" or "vmlinux", for --verbose.</summary>
    public string Source { get; }

    public static PvhImage Load(string path) => Parse(path, BootFile.ReadAll(path, "kernel"));

    public static PvhImage Parse(string path, byte[] image)
    {
        byte[] vmlinux = ExtractVmlinux(path, image, out string source);
        ElfFile elf = ElfFile.Parse(path, vmlinux);
        if (elf.Bits != 64 || !elf.LoadSegments.Any())
        {
            throw new BootImageException(path, "the kernel inside is not a loadable ELF64 vmlinux");
        }

        uint entry = FindEntry(path, vmlinux, elf)
            ?? throw new BootImageException(path, "has no XEN_ELFNOTE_PHYS32_ENTRY note: the kernel was built without CONFIG_PVH");
        if (!ElfLoader.IsInsideSegment(elf, entry))
        {
            throw new BootImageException(path, $"PVH entry 0x{entry:x} is not inside a loadable segment");
        }

        return new PvhImage(path, vmlinux, elf, entry, source);
    }

    /// <summary>
    /// The ELF vmlinux of a kernel image: the image itself when it is one, else the bzImage's
    /// decompressed payload (LZ4 or gzip). <paramref name="source"/> says which, for messages.
    /// </summary>
    public static byte[] ExtractVmlinux(string path, byte[] image, out string source)
    {
        if (ElfFile.HasElfMagic(image))
        {
            source = "vmlinux";
            return image;
        }

        BzImage bz = BzImage.Parse(path, image);
        byte[] vmlinux = BzImagePayload.Decompress(path, BzImagePayload.Find(path, image, bz.SetupSize), out string compression);
        source = $"bzImage, {compression} payload";
        return vmlinux;
    }

    /// <summary>The XEN_ELFNOTE_PHYS32_ENTRY note's value (a 32- or 64-bit number), or null when there is none.</summary>
    private static uint? FindEntry(string path, byte[] vmlinux, ElfFile elf)
    {
        ulong? value = XenElfNotes.Read(path, vmlinux, elf).Number(XenElfNotes.Phys32Entry);
        return value switch
        {
            null => null,
            <= uint.MaxValue => (uint)value,
            _ => throw new BootImageException(path, $"PVH entry 0x{value:x} is above 4 GiB"),
        };
    }
}
