namespace SharpVisor.Boot;

/// <summary>One named range of guest physical memory the boot code filled or reserved.</summary>
public readonly record struct BootPlacement(string Name, ulong Address, ulong Size)
{
    public ulong End => Address + Size;

    public bool Overlaps(ulong address, ulong size) => address < End && Address < address + size;

    public override string ToString() =>
        $"{Name,-22} 0x{Address:x9}-0x{End:x9} ({FormatSize(Size)})";

    internal static string FormatSize(ulong size) => size switch
    {
        >= 1UL << 30 => $"{size / (double)(1UL << 30):0.#} GiB",
        >= 1UL << 20 => $"{size / (double)(1UL << 20):0.#} MiB",
        >= 1UL << 10 => $"{size / (double)(1UL << 10):0.#} KiB",
        _ => $"{size} bytes",
    };
}
