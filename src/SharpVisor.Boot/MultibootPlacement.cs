namespace SharpVisor.Boot;

/// <summary>
/// Where the Multiboot loader puts its own structures: the GDT and TSS the entry state refers to,
/// multiboot_info, the Multiboot data area (mmap, module list, strings), the command line and a
/// boot stack. Normally the fixed <see cref="BootLayout"/> addresses; when the kernel or a module
/// lies on them (real-mode test kernels load at 0x8000), one block after the last module, as
/// QEMU's loader does (or, if that does not fit, the highest free RAM below 4 GiB).
/// </summary>
public readonly record struct MultibootPlacement(
    ulong GdtAddress,
    ulong TssAddress,
    ulong InfoAddress,
    ulong DataAddress,
    ulong CommandLineAddress,
    ulong StackTop)
{
    // The relocated block: GDT, TSS, info page, stack page, data area, then the command line.
    private const ulong BlockTss = 0x100;
    private const ulong BlockInfo = 0x1000;
    private const ulong BlockStackTop = 0x3000;
    private const ulong BlockData = 0x3000;
    private const ulong BlockCommandLine = BlockData + BootLayout.MultibootDataSize;

    /// <summary>The fixed layout, used whenever nothing was loaded on it.</summary>
    public static MultibootPlacement Fixed { get; } = new(
        BootLayout.GdtAddress,
        BootLayout.TssAddress,
        BootLayout.MultibootInfoAddress,
        BootLayout.MultibootDataAddress,
        BootLayout.CommandLineAddress,
        BootLayout.BootStackTop);

    /// <summary>True when this is not the fixed layout.</summary>
    public bool IsRelocated => this != Fixed;

    /// <summary>The structures' ranges, for the overlap checks and the boot report.</summary>
    public IReadOnlyList<BootPlacement> Regions(ulong commandLineLength) =>
    [
        new("GDT", GdtAddress, BootLayout.GdtSize),
        new("TSS", TssAddress, BootLayout.TssSize),
        new("multiboot_info", InfoAddress, BootLayout.BootInfoSize),
        new("boot stack", StackTop - 0x1000, 0x1000),
        new("multiboot data", DataAddress, BootLayout.MultibootDataSize),
        new("command line", CommandLineAddress, Math.Max(commandLineLength, 1)),
    ];

    /// <summary>Bytes the relocated block needs for a command line of <paramref name="commandLineLength"/> bytes.</summary>
    internal static ulong BlockSize(ulong commandLineLength) => (BlockCommandLine + commandLineLength + 0xFFF) & ~0xFFFUL;

    /// <summary>The relocated block at <paramref name="block"/> (page-aligned).</summary>
    internal static MultibootPlacement At(ulong block) => new(
        block,
        block + BlockTss,
        block + BlockInfo,
        block + BlockData,
        block + BlockCommandLine,
        block + BlockStackTop);
}
