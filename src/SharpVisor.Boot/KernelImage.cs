using SharpVisor.Memory;

namespace SharpVisor.Boot;

/// <summary>
/// A parsed, validated kernel file that knows how to place itself in guest memory and what
/// state vCPU 0 starts in. <see cref="Detect(string)"/> picks the format.
/// </summary>
public abstract class KernelImage
{
    protected KernelImage(string path)
    {
        Path = path;
    }

    public string Path { get; }

    public abstract KernelFormat Format { get; }

    /// <summary>One line for --verbose output, e.g. "bzImage, boot protocol 2.15, relocatable".</summary>
    public abstract string Description { get; }

    /// <summary>
    /// Writes the kernel and everything it needs (command line, initrd or modules, boot
    /// information, page tables, GDT) into <paramref name="memory"/>; returns vCPU 0's entry state.
    /// </summary>
    public abstract BootResult Load(GuestMemory memory, BootRequest request);

    /// <summary>Reads <paramref name="path"/> and parses it as whichever supported format it is.</summary>
    public static KernelImage Detect(string path) => Detect(path, BootFile.ReadAll(path, "kernel"));

    /// <summary>
    /// Chooses the format from the bytes: ELF files are Multiboot when they carry a Multiboot
    /// header, else vmlinux when 64-bit; other files are a bzImage when they have its boot
    /// sector signature or "HdrS", else Multiboot (a.out kludge) when they carry the header.
    /// </summary>
    public static KernelImage Detect(string path, byte[] image)
    {
        if (ElfFile.HasElfMagic(image))
        {
            if (MultibootHeader.Find(path, image) is { } elfHeader)
            {
                return MultibootImage.Parse(path, image, elfHeader);
            }

            if (image.Length > 4 && image[4] == 2)
            {
                return VmlinuxImage.Parse(path, image);
            }

            throw new BootImageException(path, "is a 32-bit ELF file without a Multiboot header: not a kernel SharpVisor can boot");
        }

        if (BzImage.HasSignature(image))
        {
            return BzImage.Parse(path, image);
        }

        if (MultibootHeader.Find(path, image) is { } header)
        {
            return MultibootImage.Parse(path, image, header);
        }

        throw new BootImageException(path, "not a kernel SharpVisor can boot: neither a bzImage (no 0xAA55 boot flag or \"HdrS\" header), an ELF64 vmlinux, nor a Multiboot kernel (no 0x1BADB002 header in the first 8 KiB)");
    }
}
