namespace SharpVisor.Xen;

/// <summary>How one Xen domain is set up by its builder (the VMM).</summary>
public sealed class XenDomainOptions
{
    /// <summary>The domain's id; SharpVisor's VMM is domain 0, its guest domain 1.</summary>
    public ushort DomainId { get; init; } = 1;

    public int VcpuCount { get; init; } = 1;

    /// <summary>The guest's memory map, as the boot loader gave it (XENMEM_memory_map).</summary>
    public IReadOnlyList<XenMemoryMapEntry> MemoryMap { get; init; } = [];

    /// <summary>The frame of the PV console ring (HVM_PARAM_CONSOLE_PFN), or 0 for none.</summary>
    public ulong ConsolePfn { get; init; }

    /// <summary>The frame of the XenStore ring (HVM_PARAM_STORE_PFN), or 0 for none.</summary>
    public ulong StorePfn { get; init; }

    /// <summary>Where the guest's console output goes: console_io writes and the PV console ring.</summary>
    public Action<ReadOnlyMemory<byte>>? ConsoleOutput { get; init; }

    /// <summary>Diagnostics (unknown hypercalls, refused arguments), one line each.</summary>
    public Action<string>? Log { get; init; }

    /// <summary>The wall-clock time the domain's system time 0 corresponds to.</summary>
    public DateTimeOffset? WallClockAtStart { get; init; }
}
