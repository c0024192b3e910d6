namespace SharpVisor.Boot;

/// <summary>
/// A Linux kernel as Xen's PV domain builder sees it (tools/libs/guest/xg_dom_elfloader.c): the ELF
/// vmlinux, its XEN_ELFNOTE_ENTRY (a virtual address), VIRT_BASE (where pseudo-physical 0 is
/// mapped), PADDR_OFFSET, and HYPERCALL_PAGE when the kernel wants one. A segment loads at
/// pseudo-physical p_paddr - PADDR_OFFSET, mapped at VIRT_BASE plus that.
/// </summary>
public sealed class XenPvImage
{
    private XenPvImage(string source, byte[] vmlinux, ElfFile elf, XenElfNotes notes, ulong entry, ulong virtBase, ulong paddrOffset)
    {
        Source = source;
        Vmlinux = vmlinux;
        Elf = elf;
        Notes = notes;
        Entry = entry;
        VirtBase = virtBase;
        PaddrOffset = paddrOffset;
    }

    /// <summary>"bzImage, LZ4 payload" or "vmlinux".</summary>
    public string Source { get; }

    public byte[] Vmlinux { get; }

    public ElfFile Elf { get; }

    public XenElfNotes Notes { get; }

    /// <summary>XEN_ELFNOTE_ENTRY: the 64-bit virtual entry point (startup_xen).</summary>
    public ulong Entry { get; }

    /// <summary>XEN_ELFNOTE_VIRT_BASE: the virtual address of pseudo-physical 0 (__START_KERNEL_map).</summary>
    public ulong VirtBase { get; }

    public ulong PaddrOffset { get; }

    /// <summary>XEN_ELFNOTE_HYPERCALL_PAGE: where the kernel wants the hypercall page, or null (Linux 6.1.123+ has none).</summary>
    public ulong? HypercallPage => Notes.Number(XenElfNotes.HypercallPage);

    /// <summary>
    /// XEN_ELFNOTE_INIT_P2M: where the kernel wants the initial P2M list mapped (Linux: 512 GiB, outside
    /// its kernel mapping), or null for a list inside the kernel mapping. Xen ignores a base that is not
    /// below VIRT_BASE or not page-aligned.
    /// </summary>
    public ulong? P2mBase => Notes.Number(XenElfNotes.InitP2m) is ulong b && b < VirtBase && (b & 0xFFF) == 0 ? b : null;

    /// <summary>The pseudo-physical range the loadable segments cover (page-aligned end).</summary>
    public (ulong Start, ulong End) PhysicalExtent
    {
        get
        {
            ulong start = Elf.LoadSegments.Min(s => s.PhysicalAddress) - PaddrOffset;
            ulong end = Elf.LoadSegments.Max(s => s.PhysicalAddress + s.MemorySize) - PaddrOffset;
            return (start & ~0xFFFUL, (end + 0xFFF) & ~0xFFFUL);
        }
    }

    public static XenPvImage Load(string path) => Parse(path, BootFile.ReadAll(path, "kernel"));

    public static XenPvImage Parse(string path, byte[] image)
    {
        byte[] vmlinux = PvhImage.ExtractVmlinux(path, image, out string source);
        ElfFile elf = ElfFile.Parse(path, vmlinux);
        if (elf.Bits != 64 || elf.Machine != ElfFile.MachineX86_64 || !elf.LoadSegments.Any())
        {
            throw new BootImageException(path, "the kernel inside is not a loadable x86-64 ELF vmlinux");
        }

        XenElfNotes notes = XenElfNotes.Read(path, vmlinux, elf);
        ulong entry = notes.Number(XenElfNotes.Entry)
            ?? throw new BootImageException(path, "has no XEN_ELFNOTE_ENTRY note: the kernel was built without CONFIG_XEN_PV");
        ulong virtBase = notes.Number(XenElfNotes.VirtBase)
            ?? throw new BootImageException(path, "has no XEN_ELFNOTE_VIRT_BASE note");
        ulong paddrOffset = notes.Number(XenElfNotes.PaddrOffset) ?? 0;
        if (notes.Text(XenElfNotes.Features) is { } features && features.Split('|').Contains("writable_page_tables"))
        {
            throw new BootImageException(path, "requires writable_page_tables (Xen's trap-and-emulate of page-table writes), which this builder does not offer");
        }

        foreach (ElfProgramHeader segment in elf.LoadSegments)
        {
            if (segment.PhysicalAddress < paddrOffset || segment.FileSize > segment.MemorySize
                || segment.Offset > (ulong)vmlinux.Length || segment.FileSize > (ulong)vmlinux.Length - segment.Offset
                || segment.PhysicalAddress - paddrOffset > 1UL << 40 || segment.MemorySize > 1UL << 32)
            {
                throw new BootImageException(path, $"segment at 0x{segment.PhysicalAddress:x} is malformed");
            }
        }

        var result = new XenPvImage(source, vmlinux, elf, notes, entry, virtBase, paddrOffset);
        (ulong start, ulong end) = result.PhysicalExtent;
        if (entry < virtBase + start || entry >= virtBase + end)
        {
            throw new BootImageException(path, $"PV entry 0x{entry:x} is outside the kernel (0x{virtBase + start:x}-0x{virtBase + end:x})");
        }

        return result;
    }
}
