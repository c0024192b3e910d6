namespace SharpVisor.Host.Firecracker;

/// <summary>Firecracker's BootSource: the kernel, its initrd and command line.</summary>
public sealed record BootSource
{
    public required string KernelImagePath { get; init; }

    public string? InitrdPath { get; init; }

    public string? BootArgs { get; init; }
}
