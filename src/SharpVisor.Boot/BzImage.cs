using System.Buffers.Binary;
using SharpVisor.Memory;

namespace SharpVisor.Boot;

/// <summary>
/// A Linux bzImage (Documentation/arch/x86/boot.rst): a real-mode setup of (setup_sects+1)
/// sectors, then the protected-mode kernel (the compressed kernel and its decompressor). We
/// skip the setup and enter the protected-mode kernel through its 64-bit entry at load + 0x200,
/// so the image must speak boot protocol 2.12+ and set XLF_KERNEL_64.
/// </summary>
public sealed class BzImage : KernelImage
{
    /// <summary>2.12: the first protocol with xloadflags, which says whether the 64-bit entry exists.</summary>
    public const ushort MinimumProtocol = 0x020C;

    /// <summary>The 64-bit entry point's offset from the start of the protected-mode kernel.</summary>
    public const ulong Entry64Offset = 0x200;

    private const int SectorSize = 512;

    private readonly byte[] _image;

    private BzImage(string path, byte[] image)
        : base(path)
    {
        _image = image;
    }

    public override KernelFormat Format => KernelFormat.BzImage;

    public override string Description =>
        $"bzImage, boot protocol {Protocol >> 8}.{Protocol & 0xFF:00}{(Relocatable ? ", relocatable" : "")}, init_size {BootPlacement.FormatSize(InitSize)}";

    public ushort Protocol { get; private init; }

    /// <summary>setup_sects as the kernel means it (0 reads as 4).</summary>
    public int SetupSectors { get; private init; }

    /// <summary>Bytes before the protected-mode kernel: (setup_sects + 1) * 512.</summary>
    public int SetupSize => (SetupSectors + 1) * SectorSize;

    /// <summary>syssize * 16: the protected-mode kernel's length in the file.</summary>
    public ulong ProtectedModeSize { get; private init; }

    /// <summary>End of the setup header in the file and in boot_params: 0x202 + the byte at 0x201.</summary>
    public int SetupHeaderEnd { get; private init; }

    public byte LoadFlags { get; private init; }

    public ushort XLoadFlags { get; private init; }

    public uint KernelAlignment { get; private init; }

    public bool Relocatable { get; private init; }

    public uint InitSize { get; private init; }

    public ulong PrefAddress { get; private init; }

    /// <summary>Longest command line the kernel accepts, without the terminating NUL.</summary>
    public uint CommandLineSize { get; private init; }

    /// <summary>Highest address the initrd may occupy (its last byte).</summary>
    public uint InitrdAddressMax { get; private init; }

    /// <summary>Bytes the kernel needs from its load address before it reads the memory map.</summary>
    public ulong RuntimeSize => Math.Max(InitSize, ProtectedModeSize);

    /// <summary>True when the file looks like a bzImage at all: 0xAA55 at 0x1FE or "HdrS" at 0x202.</summary>
    public static bool HasSignature(ReadOnlySpan<byte> image) =>
        (image.Length >= BootParams.BootFlagOffset + 2 && BinaryPrimitives.ReadUInt16LittleEndian(image[BootParams.BootFlagOffset..]) == BootParams.BootFlag) ||
        (image.Length >= BootParams.HeaderMagicOffset + 4 && BinaryPrimitives.ReadUInt32LittleEndian(image[BootParams.HeaderMagicOffset..]) == BootParams.HeaderMagic);

    public static BzImage Parse(string path, byte[] image)
    {
        if (image.Length < BootParams.VersionOffset + 2)
        {
            throw new BootImageException(path, $"truncated: {image.Length} bytes is too short for a bzImage boot sector and header");
        }

        if (U16(image, BootParams.BootFlagOffset) != BootParams.BootFlag)
        {
            throw new BootImageException(path, "not a bzImage: no 0xAA55 boot flag at offset 0x1FE");
        }

        if (U32(image, BootParams.HeaderMagicOffset) != BootParams.HeaderMagic)
        {
            throw new BootImageException(path, "not a bzImage: no \"HdrS\" setup header at offset 0x202 (a pre-2.00 boot protocol kernel?)");
        }

        ushort protocol = U16(image, BootParams.VersionOffset);
        if (protocol < MinimumProtocol)
        {
            throw new BootImageException(path, $"boot protocol {protocol >> 8}.{protocol & 0xFF:00} is too old: the 64-bit entry needs 2.12 or newer");
        }

        int headerEnd = 0x202 + image[BootParams.JumpOffset + 1];
        if (headerEnd < BootParams.InitSizeOffset + 4 || headerEnd > BootParams.SetupHeaderMaxEnd)
        {
            throw new BootImageException(path, $"setup header length (ends at 0x{headerEnd:x}) does not match boot protocol {protocol >> 8}.{protocol & 0xFF:00}");
        }

        if (image.Length < headerEnd)
        {
            throw new BootImageException(path, $"truncated: {image.Length} bytes ends inside the setup header (0x{headerEnd:x})");
        }

        byte loadFlags = image[BootParams.LoadFlagsOffset];
        if ((loadFlags & BootParams.LoadedHigh) == 0)
        {
            throw new BootImageException(path, "is a zImage (LOADED_HIGH clear); only bzImage kernels are supported");
        }

        ushort xloadFlags = U16(image, BootParams.XLoadFlagsOffset);
        if ((xloadFlags & BootParams.XlfKernel64) == 0)
        {
            throw new BootImageException(path, "is a 32-bit-only kernel (XLF_KERNEL_64 is clear in xloadflags): SharpVisor boots 64-bit kernels");
        }

        int setupSectors = image[BootParams.SetupSectsOffset] == 0 ? 4 : image[BootParams.SetupSectsOffset];
        int setupSize = (setupSectors + 1) * SectorSize;
        if (image.Length < setupSize)
        {
            throw new BootImageException(path, $"truncated: {image.Length} bytes is shorter than its {setupSize}-byte setup code");
        }

        uint sysSize = U32(image, BootParams.SysSizeOffset);
        ulong protectedModeSize = (ulong)sysSize * 16;
        if (sysSize == 0)
        {
            throw new BootImageException(path, "syssize is zero: the image has no protected-mode kernel");
        }

        if ((ulong)image.Length - (ulong)setupSize < protectedModeSize)
        {
            throw new BootImageException(path, $"truncated: syssize says the kernel is {protectedModeSize} bytes after the {setupSize}-byte setup, but the file has only {image.Length - setupSize}");
        }

        bool relocatable = image[BootParams.RelocatableKernelOffset] != 0;
        uint alignment = U32(image, BootParams.KernelAlignmentOffset);
        if (relocatable && (alignment < MemoryRegion.PageSize || !ulong.IsPow2(alignment)))
        {
            throw new BootImageException(path, $"kernel_alignment 0x{alignment:x} is not a power of two of at least 4 KiB");
        }

        uint initSize = U32(image, BootParams.InitSizeOffset);
        if (initSize == 0)
        {
            throw new BootImageException(path, "init_size is zero");
        }

        return new BzImage(path, image)
        {
            Protocol = protocol,
            SetupSectors = setupSectors,
            ProtectedModeSize = protectedModeSize,
            SetupHeaderEnd = headerEnd,
            LoadFlags = loadFlags,
            XLoadFlags = xloadFlags,
            KernelAlignment = alignment,
            Relocatable = relocatable,
            InitSize = initSize,
            PrefAddress = U64(image, BootParams.PrefAddressOffset),
            CommandLineSize = U32(image, BootParams.CmdlineSizeOffset),
            InitrdAddressMax = U32(image, BootParams.InitrdAddrMaxOffset),
        };
    }

    /// <summary>
    /// Where the protected-mode kernel goes: pref_address. Linux's 64-bit decompressor never
    /// runs below LOAD_PHYSICAL_ADDR (which pref_address reports): loaded lower, it still
    /// decompresses into pref_address .. pref_address + init_size (compressed/head_64.S clamps
    /// its target). Loading a relocatable kernel at 1 MiB therefore would not save any memory,
    /// it would only hide a guest that is too small until the decompressor crashes; so we load
    /// at pref_address and give a clear error when RAM ends below pref_address + init_size.
    /// Only a relocatable kernel whose pref_address is unusable (below 1 MiB or misaligned)
    /// goes to the first kernel_alignment boundary at or above 1 MiB instead.
    /// </summary>
    public ulong ChooseLoadAddress()
    {
        ulong preferred = PrefAddress;
        bool preferredUsable = preferred >= BootLayout.KernelMinimumAddress && (!Relocatable || preferred % KernelAlignment == 0);
        if (preferredUsable)
        {
            return preferred;
        }

        if (!Relocatable)
        {
            throw new BootImageException(Path, $"the kernel is not relocatable and its pref_address 0x{preferred:x} is below 1 MiB");
        }

        ulong alignment = KernelAlignment;
        return (BootLayout.KernelMinimumAddress + alignment - 1) & ~(alignment - 1);
    }

    public override BootResult Load(GuestMemory memory, BootRequest request)
    {
        var plan = new MemoryPlan(request.MemoryMap(memory));
        ulong load = ChooseLoadAddress();
        string? whyNot = null;
        DecompressedKernel? kernel = request.KernelDecompressor == KernelDecompressor.Vmm ? DecompressedKernel.TryLoad(this, _image, memory, plan, load, out whyNot) : null;

        // What the kernel may use from its load address before it reads the memory map: init_size
        // (which covers the decompressed image and the decompressor's work space), or what the VMM's
        // decoding and the ELF's segments reached when that is further.
        ulong span = Math.Max(RuntimeSize, kernel?.Extent ?? 0);
        span = (span + MemoryRegion.PageSize - 1) & ~(MemoryRegion.PageSize - 1);
        if (!plan.Map.IsUsable(load, span))
        {
            ulong needed = load + span;
            throw new BootImageException(Path, $"the kernel does not fit in guest RAM: it needs 0x{load:x}-0x{needed:x} (load address + init_size {BootPlacement.FormatSize(InitSize)}) but low RAM ends at 0x{plan.Map.LowRamEnd:x}; give the guest at least {(needed + (1UL << 20) - 1) >> 20} MiB plus room for the initrd");
        }

        plan.Place(Path, "kernel", load, span);
        BootParams zeroPage = BootParams.FromSetupHeader(_image, SetupHeaderEnd);
        BootResult result;
        if (kernel is null)
        {
            memory.Write(load, _image.AsSpan(SetupSize, (int)ProtectedModeSize));
            result = LinuxBoot.Finish(memory, request, plan, zeroPage, load + Entry64Offset, CommandLineSize, InitrdAddressMax, Format, Description);
            result.Decompressor = KernelDecompressor.Guest;
            result.Notes = whyNot is null ? [] : [$"kernel decompressor: the guest's, because {whyNot}"];
            return result;
        }

        // What the guest's decompressor leaves in boot_params (compressed/misc.c, extract_kernel):
        // KASLR_FLAG clear (it sets it only when it randomized, and the VMM does not), and the
        // RSDP address it would have found by scanning the BIOS area.
        zeroPage.WriteU8(BootParams.LoadFlagsOffset, (byte)(zeroPage.ReadU8(BootParams.LoadFlagsOffset) & ~BootParams.KaslrFlag));
        if (request.AcpiRsdpAddress is { } rsdp)
        {
            zeroPage.WriteU64(BootParams.AcpiRsdpAddrOffset, rsdp);
        }

        string description = $"{Description}; {kernel.Compression} payload decompressed by the VMM ({kernel.Length >> 20} MiB in {kernel.DecodeTime.TotalMilliseconds:0} ms), KASLR off";
        result = LinuxBoot.Finish(memory, request, plan, zeroPage, load + kernel.EntryOffset, CommandLineSize, InitrdAddressMax, Format, description);
        result.Decompressor = KernelDecompressor.Vmm;
        return result;
    }

    private static ushort U16(byte[] image, int offset) => BinaryPrimitives.ReadUInt16LittleEndian(image.AsSpan(offset));

    private static uint U32(byte[] image, int offset) => BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(offset));

    private static ulong U64(byte[] image, int offset) => BinaryPrimitives.ReadUInt64LittleEndian(image.AsSpan(offset));
}
