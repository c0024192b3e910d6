using SharpVisor.Memory;

namespace SharpVisor.Boot;

/// <summary>
/// An uncompressed x86-64 Linux kernel (vmlinux, ELF64), booted the way Firecracker boots one
/// without PVH: PT_LOAD segments at their physical addresses, boot_params with a synthesized
/// setup header, and a jump to startup_64 in long mode with RSI = boot_params.
/// </summary>
public sealed class VmlinuxImage : KernelImage
{
    /// <summary>x86's COMMAND_LINE_SIZE is 2048 including the NUL; a vmlinux carries no cmdline_size.</summary>
    public const int CommandLineLimit = 2047;

    /// <summary>Linux's default initrd_addr_max when no setup header says otherwise.</summary>
    public const uint InitrdAddressMax = 0x7FFF_FFFF;

    /// <summary>CONFIG_PHYSICAL_ALIGN's default, reported as kernel_alignment in the synthesized header.</summary>
    public const uint KernelAlignment = 0x20_0000;

    private readonly byte[] _image;

    private VmlinuxImage(string path, byte[] image, ElfFile elf, ulong entry)
        : base(path)
    {
        _image = image;
        Elf = elf;
        PhysicalEntry = entry;
    }

    public override KernelFormat Format => KernelFormat.Vmlinux;

    public override string Description => $"vmlinux (ELF64, {Elf.LoadSegments.Count()} PT_LOAD segments)";

    public ElfFile Elf { get; }

    /// <summary>e_entry as a physical address (__START_KERNEL_map subtracted when it is a kernel virtual address).</summary>
    public ulong PhysicalEntry { get; }

    public static VmlinuxImage Parse(string path, byte[] image)
    {
        ElfFile elf = ElfFile.Parse(path, image);
        if (elf.Bits != 64)
        {
            throw new BootImageException(path, "is a 32-bit ELF file: a vmlinux must be ELF64");
        }

        if (!elf.LoadSegments.Any())
        {
            throw new BootImageException(path, "ELF file has no loadable (PT_LOAD) segments");
        }

        ulong entry = elf.Entry >= LinuxBoot.StartKernelMap ? elf.Entry - LinuxBoot.StartKernelMap : elf.Entry;
        if (!ElfLoader.IsInsideSegment(elf, entry))
        {
            throw new BootImageException(path, $"entry point 0x{elf.Entry:x} (physical 0x{entry:x}) is not inside any loadable segment");
        }

        return new VmlinuxImage(path, image, elf, entry);
    }

    public override BootResult Load(GuestMemory memory, BootRequest request)
    {
        var plan = new MemoryPlan(request.MemoryMap(memory));
        ElfLoader.LoadSegments(memory, plan, Path, _image, Elf);
        BootParams zeroPage = BootParams.Synthesized(KernelAlignment, CommandLineLimit);
        return LinuxBoot.Finish(memory, request, plan, zeroPage, PhysicalEntry, CommandLineLimit, InitrdAddressMax, Format, Description);
    }
}
