using SharpVisor.Boot;
using SharpVisor.Emulator.Mmu;

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

    /// <summary>
    /// The emulator's paging technique (<c>--mmu shadow|nested</c>); null means shadow. Asking for
    /// one together with <see cref="AcceleratorKind.Kvm"/> is an error; when auto picks KVM it is ignored.
    /// </summary>
    public MmuMode? Mmu { get; init; }

    /// <summary>The KVM device node (a test can name a missing one).</summary>
    public string KvmDevicePath { get; init; } = "/dev/kvm";

    /// <summary>
    /// Where the emulator reports what the guest did wrong that it could survive (bad device
    /// register accesses, unimplemented instructions), one line each, rate-limited; null: counted only.
    /// </summary>
    public Action<string>? Diagnostics { get; init; }

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
