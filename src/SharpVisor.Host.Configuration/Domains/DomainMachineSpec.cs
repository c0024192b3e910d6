namespace SharpVisor.Host.Domains;

/// <summary>Everything needed to build one guest machine, already validated.</summary>
public sealed record DomainMachineSpec
{
    public required string Name { get; init; }

    public required string KernelPath { get; init; }

    public string? InitrdPath { get; init; }

    public string CommandLine { get; init; } = "";

    public required int VcpuCount { get; init; }

    public required ulong MemoryBytes { get; init; }

    /// <summary>"kvm", "emulator" or "auto".</summary>
    public string Accelerator { get; init; } = "auto";

    public IReadOnlyList<DriveSpec> Drives { get; init; } = [];

    public IReadOnlyList<NetworkInterfaceSpec> NetworkInterfaces { get; init; } = [];

    /// <summary>Balloon target in MiB when a balloon was configured, else null.</summary>
    public long? BalloonTargetMib { get; init; }

    /// <summary>The balloon may deflate when the guest runs short of memory.</summary>
    public bool BalloonDeflateOnOom { get; init; }

    /// <summary>Seconds between balloon statistics refreshes; 0 leaves statistics off.</summary>
    public int BalloonStatisticsIntervalSeconds { get; init; }

    /// <summary>A virtio-rng device (Firecracker's PUT /entropy).</summary>
    public bool EntropyDevice { get; init; }

    /// <summary>Build it as a Xen domain (PVH) instead of a plain PC.</summary>
    public SharpVisor.Host.Vmm.XenMode Xen { get; init; }

    /// <summary>Attach Firecracker's boot-timer device; its lines go here (<c>--boot-timer</c>).</summary>
    public Action<string>? BootTimer { get; init; }

    /// <summary>A virtio-vsock device (Firecracker's PUT /vsock), or null.</summary>
    public Vmm.VsockConfiguration? Vsock { get; init; }

    /// <summary>Kernel runtime protection (docs/security.md), or null.</summary>
    public SharpVisor.Security.ProtectionPolicy? Protection { get; init; }

    /// <summary>Where the machine's own log lines (device warnings) go; standard error when null.</summary>
    public Action<string>? Log { get; init; }
}
