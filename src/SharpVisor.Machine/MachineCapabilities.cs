namespace SharpVisor.Machine;

/// <summary>
/// What a machine's accelerator brings, as facts a VMM reads instead of asking which accelerator
/// it has: what a snapshot records (it loads only on the same accelerator, MMU and CPU vendor) and
/// what the firmware tables describe.
/// </summary>
public sealed record MachineCapabilities
{
    /// <summary>The accelerator's name as snapshots and the CLI spell it: <c>kvm</c> or <c>emulator</c>.</summary>
    public required string Accelerator { get; init; }

    /// <summary>The platform has a CMOS RTC at ports 0x70-0x71 (the emulator's; KVM's in-kernel chips have none).</summary>
    public bool HasCmosRtc { get; init; }

    /// <summary>The software MMU's paging technique (<c>shadow</c>, <c>nested</c>); null where the hardware pages.</summary>
    public string? Mmu { get; init; }

    /// <summary>The CPU vendor the guest sees (<c>intel</c>, <c>amd</c>); null: the host's processor, as it is.</summary>
    public string? CpuVendor { get; init; }
}
