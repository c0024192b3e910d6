using SharpVisor.Memory;

namespace SharpVisor.Boot;

/// <summary>What to boot: the kernel file, its command line and the files that go with it.</summary>
public sealed record BootRequest(string KernelPath)
{
    public string CommandLine { get; init; } = "";

    /// <summary>Initial ramdisk for Linux kernels (bzImage and vmlinux).</summary>
    public string? InitrdPath { get; init; }

    /// <summary>
    /// More initramfs archives (cpio, optionally compressed) appended after the initrd, each
    /// starting 4-byte aligned: Linux unpacks concatenated archives one after another, so a
    /// test can add files (a /hook.sh) to a stock initrd without rebuilding it.
    /// </summary>
    public IReadOnlyList<string> ExtraInitrdPaths { get; init; } = [];

    /// <summary>Modules for Multiboot kernels, loaded page-aligned after the kernel in this order.</summary>
    public IReadOnlyList<BootModule> Modules { get; init; } = [];

    /// <summary>
    /// Who decompresses a bzImage (<see cref="KernelDecompressor.Vmm"/> unless asked otherwise); other
    /// formats ignore it.
    /// </summary>
    public KernelDecompressor KernelDecompressor { get; init; }

    /// <summary>
    /// Where the machine's ACPI RSDP is, or null for no ACPI: when the VMM decompresses a bzImage it
    /// puts it in boot_params.acpi_rsdp_addr, as the guest's decompressor would after its scan.
    /// </summary>
    public ulong? AcpiRsdpAddress { get; init; }

    /// <summary>
    /// RAM ranges the memory map reports reserved (pages a hypervisor keeps for itself, such as
    /// Xen's console and XenStore rings under `--xen hvm`); nothing is loaded there.
    /// </summary>
    public IReadOnlyList<(ulong Address, ulong Size)> ReservedRanges { get; init; } = [];

    /// <summary>The guest's memory map with <see cref="ReservedRanges"/> carved out.</summary>
    internal E820Map MemoryMap(GuestMemory memory)
    {
        E820Map map = E820Map.FromGuestMemory(memory);
        foreach ((ulong address, ulong size) in ReservedRanges)
        {
            map.Reserve(address, size);
        }

        return map;
    }
}
