using SharpVisor.Machine;
using SharpVisor.Memory;

namespace SharpVisor.Boot;

/// <summary>
/// A Multiboot v1 kernel: either placed by the header's a.out-kludge address fields (flag bit
/// 16) or, without them, an ELF32 executable whose PT_LOAD segments go to p_paddr. Modules
/// follow the kernel page-aligned; the kernel is entered in 32-bit protected mode with
/// EAX = 0x2BADB002 and EBX = multiboot_info.
/// </summary>
public sealed class MultibootImage : KernelImage
{
    private const ulong FourGiB = 1UL << 32;

    private readonly byte[] _image;

    private MultibootImage(string path, byte[] image, MultibootHeader header)
        : base(path)
    {
        _image = image;
        Header = header;
    }

    public override KernelFormat Format => KernelFormat.Multiboot;

    public override string Description =>
        $"Multiboot kernel ({(Elf is null ? "a.out kludge" : "ELF32")}, header at offset 0x{Header.FileOffset:x}, flags 0x{Header.Flags:x})";

    public MultibootHeader Header { get; }

    /// <summary>The ELF32 executable, or null when the address fields place the image.</summary>
    public ElfFile? Elf { get; private init; }

    /// <summary>Physical entry point.</summary>
    public ulong Entry { get; private init; }

    /// <summary>a.out kludge: where in the file the loaded bytes start, and [LoadAddress, LoadEnd) / [LoadEnd, BssEnd).</summary>
    public int LoadFileOffset { get; private init; }

    public ulong LoadAddress { get; private init; }

    public ulong LoadEnd { get; private init; }

    public ulong BssEnd { get; private init; }

    public static MultibootImage Parse(string path, byte[] image, MultibootHeader header)
    {
        uint unsupported = header.Flags & MultibootHeader.RequiredFlagsMask & ~MultibootHeader.SupportedRequiredFlags;
        if ((unsupported & MultibootHeader.FlagVideoMode) != 0)
        {
            throw new BootImageException(path, "the Multiboot header requires video mode information (flag bit 2), which SharpVisor does not provide");
        }

        if (unsupported != 0)
        {
            throw new BootImageException(path, $"the Multiboot header requires features SharpVisor does not know (flags 0x{unsupported:x})");
        }

        return header.HasAddressFields ? ParseAddressFields(path, image, header) : ParseElf(path, image, header);
    }

    public override BootResult Load(GuestMemory memory, BootRequest request)
    {
        if (request.InitrdPath is not null || request.ExtraInitrdPaths.Count > 0)
        {
            throw new BootImageException(Path, "an initrd is for Linux kernels; give a Multiboot kernel modules instead");
        }

        byte[] commandLine = BootCommandLine.Encode(Path, request.CommandLine, BootLayout.CommandLineAreaSize - 1);
        // The loader's own structures are placed after the kernel and modules (see MultibootPlacement).
        var plan = new MemoryPlan(E820Map.FromGuestMemory(memory), reserveBootLayout: false);

        ulong kernelEnd;
        if (Elf is null)
        {
            plan.Place(Path, "kernel", LoadAddress, BssEnd - LoadAddress);
            memory.Write(LoadAddress, _image.AsSpan(LoadFileOffset, (int)(LoadEnd - LoadAddress)));
            ElfLoader.Zero(memory, LoadEnd, BssEnd - LoadEnd);
            kernelEnd = BssEnd;
        }
        else
        {
            kernelEnd = ElfLoader.LoadSegments(memory, plan, Path, _image, Elf);
        }

        var modules = new List<MultibootModule>();
        ulong next = AlignUp(kernelEnd);
        for (int i = 0; i < request.Modules.Count; i++)
        {
            BootModule module = request.Modules[i];
            string text = module.CommandLine ?? System.IO.Path.GetFileName(module.Path);
            if (text.Contains('\0'))
            {
                throw new BootImageException(module.Path, "the module string contains a NUL character");
            }

            ulong size = (ulong)BootFile.GetLength(module.Path, "module");
            if (next + size > FourGiB)
            {
                throw new BootImageException(module.Path, $"module {i} ({BootPlacement.FormatSize(size)}) would end above 4 GiB, out of a 32-bit kernel's reach");
            }

            plan.Place(module.Path, $"module {i}", next, size);
            BootFile.ReadInto(module.Path, "module", memory.GetSpan(next, (int)size));
            modules.Add(new MultibootModule(next, next + size, text));
            next = AlignUp(next + size);
        }

        MultibootPlacement placement = PlaceStructures(plan, (ulong)commandLine.Length, next);
        memory.Write(placement.CommandLineAddress, commandLine);
        MultibootInfo.Write(memory, Path, plan.Map, modules, placement);
        BootGdt.WriteProtectedMode(memory, placement.GdtAddress, placement.TssAddress);

        VcpuState state = BootCpuState.ProtectedMode(Entry, MultibootHeader.BootloaderMagic, (uint)placement.InfoAddress, placement);
        var placements = new List<BootPlacement>(plan.Placements);
        placements.Sort((a, b) => a.Address.CompareTo(b.Address));
        return new BootResult(Format, Description, state, placements, plan.Map);
    }

    /// <summary>
    /// The fixed layout when the kernel and modules left it free; otherwise one block at
    /// <paramref name="afterImage"/> (the page after the last module, as QEMU), or the highest
    /// free RAM below 4 GiB. Records the structures in <paramref name="plan"/>.
    /// </summary>
    private MultibootPlacement PlaceStructures(MemoryPlan plan, ulong commandLineLength, ulong afterImage)
    {
        MultibootPlacement placement = MultibootPlacement.Fixed;
        if (!placement.Regions(commandLineLength).All(r => plan.IsFree(r.Address, r.Size)))
        {
            ulong size = MultibootPlacement.BlockSize(commandLineLength);
            ulong? block = afterImage + size <= FourGiB && plan.IsFree(afterImage, size)
                ? afterImage
                : plan.FindHighest(size, MemoryRegion.PageSize, 0x1000, FourGiB);
            if (block is null)
            {
                throw new BootImageException(Path, $"no free RAM below 4 GiB for the Multiboot structures ({BootPlacement.FormatSize(size)}) beside the kernel and modules");
            }

            placement = MultibootPlacement.At(block.Value);
        }

        foreach (BootPlacement region in placement.Regions(commandLineLength))
        {
            plan.Place(Path, region.Name, region.Address, region.Size);
        }

        return placement;
    }

    private static MultibootImage ParseAddressFields(string path, byte[] image, MultibootHeader header)
    {
        // header_addr is where the header's magic lands in memory; it pins file offsets to addresses.
        if (header.HeaderAddress < header.LoadAddress)
        {
            throw new BootImageException(path, $"Multiboot header_addr 0x{header.HeaderAddress:x} is below load_addr 0x{header.LoadAddress:x}");
        }

        ulong headerDistance = header.HeaderAddress - header.LoadAddress;
        if (headerDistance > (ulong)header.FileOffset)
        {
            throw new BootImageException(path, $"Multiboot load_addr 0x{header.LoadAddress:x} would start {headerDistance - (ulong)header.FileOffset} bytes before the beginning of the file");
        }

        int loadOffset = header.FileOffset - (int)headerDistance;
        ulong available = (ulong)(image.Length - loadOffset);
        ulong loadEnd;
        if (header.LoadEndAddress == 0)
        {
            loadEnd = header.LoadAddress + available;
        }
        else if (header.LoadEndAddress <= header.LoadAddress)
        {
            throw new BootImageException(path, $"Multiboot load_end_addr 0x{header.LoadEndAddress:x} is not above load_addr 0x{header.LoadAddress:x}");
        }
        else if (header.LoadEndAddress - header.LoadAddress > available)
        {
            throw new BootImageException(path, $"truncated: Multiboot load_end_addr asks for {header.LoadEndAddress - header.LoadAddress} bytes from file offset 0x{loadOffset:x}, but the file has only {available}");
        }
        else
        {
            loadEnd = header.LoadEndAddress;
        }

        ulong bssEnd = header.BssEndAddress == 0 ? loadEnd : header.BssEndAddress;
        if (bssEnd < loadEnd)
        {
            throw new BootImageException(path, $"Multiboot bss_end_addr 0x{bssEnd:x} is below the end of the loaded image 0x{loadEnd:x}");
        }

        if (loadEnd > FourGiB)
        {
            throw new BootImageException(path, $"the Multiboot image would end at 0x{loadEnd:x}, above 4 GiB");
        }

        if (header.EntryAddress < header.LoadAddress || header.EntryAddress >= loadEnd)
        {
            throw new BootImageException(path, $"Multiboot entry_addr 0x{header.EntryAddress:x} is outside the loaded image 0x{header.LoadAddress:x}-0x{loadEnd:x}");
        }

        return new MultibootImage(path, image, header)
        {
            Entry = header.EntryAddress,
            LoadFileOffset = loadOffset,
            LoadAddress = header.LoadAddress,
            LoadEnd = loadEnd,
            BssEnd = bssEnd,
        };
    }

    private static MultibootImage ParseElf(string path, byte[] image, MultibootHeader header)
    {
        if (!ElfFile.HasElfMagic(image))
        {
            throw new BootImageException(path, "the Multiboot header has no address fields (flag bit 16) and the file is not ELF, so there is no way to know where to load it");
        }

        ElfFile elf = ElfFile.Parse(path, image);
        if (elf.Bits != 32)
        {
            throw new BootImageException(path, "is ELF64: Multiboot v1 loads ELF32 images unless the header sets the a.out kludge address fields (flag bit 16)");
        }

        if (!elf.LoadSegments.Any())
        {
            throw new BootImageException(path, "ELF file has no loadable (PT_LOAD) segments");
        }

        foreach (ElfProgramHeader segment in elf.LoadSegments)
        {
            if (segment.PhysicalAddress + segment.MemorySize > FourGiB)
            {
                throw new BootImageException(path, $"ELF segment at 0x{segment.PhysicalAddress:x} + 0x{segment.MemorySize:x} ends above 4 GiB");
            }
        }

        // Higher-half kernels link e_entry at a virtual address: translate it through the
        // segment that contains it, as GRUB does.
        ulong entry = elf.Entry;
        foreach (ElfProgramHeader segment in elf.LoadSegments)
        {
            if (entry >= segment.VirtualAddress && entry - segment.VirtualAddress < segment.MemorySize)
            {
                entry = entry - segment.VirtualAddress + segment.PhysicalAddress;
                break;
            }
        }

        if (!ElfLoader.IsInsideSegment(elf, entry))
        {
            throw new BootImageException(path, $"ELF entry point 0x{elf.Entry:x} is not inside any loadable segment");
        }

        return new MultibootImage(path, image, header) { Elf = elf, Entry = entry };
    }

    private static ulong AlignUp(ulong value) => (value + MemoryRegion.PageSize - 1) & ~(MemoryRegion.PageSize - 1);
}
