namespace SharpVisor.Boot;

/// <summary>
/// Where the VMM puts its own boot structures in guest physical memory. Everything sits in
/// conventional memory between the real-mode IVT/BDA (0..0x500) and the EBDA (0x9FC00), so
/// kernels (at 1 MiB and up) never collide with it:
/// <code>
/// 0x00500-0x0053f  GDT: null, null, 0x10 code, 0x18 data, 0x20 TSS (16 bytes in long mode)
/// 0x00600-0x0067f  TSS the boot TR points at (never used before the kernel loads its own)
/// 0x07000-0x07fff  Linux boot_params ("zero page") or the multiboot_info structure
/// 0x08000-0x08fff  boot stack (RSP starts at 0x9000)
/// 0x09000-0x09fff  PML4
/// 0x0a000-0x0afff  PDPT
/// 0x0b000-0x0efff  4 page directories: 2 MiB pages identity-mapping 0..4 GiB
/// 0x10000-0x1ffff  Multiboot data: mmap entries, module list, strings
/// 0x20000-0x2ffff  kernel command line
/// </code>
/// The static constructor asserts that no two of these overlap and all stay below the EBDA.
/// A Multiboot kernel may load anywhere, 0x8000 included: its loader uses these addresses only
/// when the kernel and modules left them free, and otherwise one block after the last module
/// (<see cref="MultibootPlacement"/>).
/// </summary>
public static class BootLayout
{
    public const ulong GdtAddress = 0x500;
    public const int GdtSize = 0x40;

    public const ulong TssAddress = 0x600;
    public const int TssSize = 0x80;

    /// <summary>Limit of the boot TSS: the 104-byte 32/64-bit TSS minus one.</summary>
    public const uint TssLimit = 0x67;

    public const ulong ZeroPageAddress = 0x7000;
    public const ulong MultibootInfoAddress = ZeroPageAddress;
    public const int BootInfoSize = 0x1000;

    public const ulong BootStackBottom = 0x8000;
    public const ulong BootStackTop = 0x9000;

    public const ulong Pml4Address = 0x9000;
    public const ulong PdptAddress = 0xA000;
    public const ulong PageDirectoryAddress = 0xB000;

    /// <summary>Page directories needed to identity-map <see cref="IdentityMappedBytes"/> with 2 MiB pages.</summary>
    public const int PageDirectoryCount = 4;
    public const ulong IdentityMappedBytes = 4UL << 30;

    public const ulong MultibootDataAddress = 0x10000;
    public const int MultibootDataSize = 0x10000;

    public const ulong CommandLineAddress = 0x20000;

    /// <summary>Room for the command line, including its terminating NUL.</summary>
    public const int CommandLineAreaSize = 0x10000;

    /// <summary>Lowest address a kernel, initrd or module may use: extended memory.</summary>
    public const ulong KernelMinimumAddress = E820Map.BiosAreaEnd;

    private static readonly BootPlacement[] s_regions =
    [
        new("GDT", GdtAddress, GdtSize),
        new("TSS", TssAddress, TssSize),
        new("boot info", ZeroPageAddress, BootInfoSize),
        new("boot stack", BootStackBottom, BootStackTop - BootStackBottom),
        new("PML4", Pml4Address, 0x1000),
        new("PDPT", PdptAddress, 0x1000),
        new("page directories", PageDirectoryAddress, (ulong)PageDirectoryCount * 0x1000),
        new("multiboot data", MultibootDataAddress, MultibootDataSize),
        new("command line", CommandLineAddress, CommandLineAreaSize),
    ];

    static BootLayout()
    {
        for (int i = 0; i < s_regions.Length; i++)
        {
            BootPlacement a = s_regions[i];
            if (a.Address < 0x500 || a.End > E820Map.EbdaStart)
            {
                throw new InvalidOperationException($"boot layout: {a.Name} is outside conventional memory");
            }

            for (int j = i + 1; j < s_regions.Length; j++)
            {
                if (a.Overlaps(s_regions[j].Address, s_regions[j].Size))
                {
                    throw new InvalidOperationException($"boot layout: {a.Name} overlaps {s_regions[j].Name}");
                }
            }
        }
    }

    /// <summary>Every fixed boot structure, named, for overlap checks and --verbose output.</summary>
    public static IReadOnlyList<BootPlacement> Regions => s_regions;
}
