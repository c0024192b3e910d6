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
}
