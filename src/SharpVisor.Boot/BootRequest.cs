namespace SharpVisor.Boot;

/// <summary>What to boot: the kernel file, its command line and the files that go with it.</summary>
public sealed record BootRequest(string KernelPath)
{
    public string CommandLine { get; init; } = "";

    /// <summary>Initial ramdisk for Linux kernels (bzImage and vmlinux).</summary>
    public string? InitrdPath { get; init; }

    /// <summary>Modules for Multiboot kernels, loaded page-aligned after the kernel in this order.</summary>
    public IReadOnlyList<BootModule> Modules { get; init; } = [];
}
