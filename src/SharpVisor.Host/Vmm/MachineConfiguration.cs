using SharpVisor.Boot;

namespace SharpVisor.Host.Vmm;

/// <summary>Everything a virtual machine monitor needs to build and boot one domain.</summary>
public sealed record MachineConfiguration
{
    public const ulong DefaultMemorySize = 512UL << 20;

    public const int MaxVcpus = 64;

    public required string KernelPath { get; init; }

    public string? InitrdPath { get; init; }

    public string CommandLine { get; init; } = "";

    public IReadOnlyList<BootModule> Modules { get; init; } = [];

    public ulong MemorySize { get; init; } = DefaultMemorySize;

    public int VcpuCount { get; init; } = 1;

    public AcceleratorKind Accelerator { get; init; } = AcceleratorKind.Auto;

    /// <summary>The KVM device node (a test can name a missing one).</summary>
    public string KvmDevicePath { get; init; } = "/dev/kvm";

    /// <summary>Where the 16550's output goes; null discards it.</summary>
    public Stream? SerialOutput { get; init; }

    /// <summary>Checks the values that no later layer checks; throws <see cref="ArgumentException"/>.</summary>
    public void Validate()
    {
        if (VcpuCount < 1 || VcpuCount > MaxVcpus)
        {
            throw new ArgumentException($"vCPU count {VcpuCount} is out of range (1-{MaxVcpus})");
        }

        if (string.IsNullOrEmpty(KernelPath))
        {
            throw new ArgumentException("no kernel given");
        }
    }
}
