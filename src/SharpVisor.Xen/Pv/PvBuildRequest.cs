namespace SharpVisor.Xen.Pv;

/// <summary>What the PV domain builder lays out: the kernel (as the ELF notes describe it), the initrd, the command line.</summary>
public sealed class PvBuildRequest
{
    public required IReadOnlyList<PvKernelSegment> Segments { get; init; }

    /// <summary>XEN_ELFNOTE_ENTRY: the virtual entry point.</summary>
    public required ulong Entry { get; init; }

    /// <summary>XEN_ELFNOTE_VIRT_BASE: the virtual address of pseudo-physical 0.</summary>
    public required ulong VirtBase { get; init; }

    /// <summary>XEN_ELFNOTE_INIT_P2M: the P2M list is mapped here, outside the kernel mapping (null: inside it, after the initrd).</summary>
    public ulong? P2mBase { get; init; }

    public ReadOnlyMemory<byte> Initrd { get; init; }

    public string CommandLine { get; init; } = string.Empty;

    public int VcpuCount { get; init; } = 1;

    public ushort DomainId { get; init; } = 1;

    /// <summary>Picks the P2M shuffle; fixed so that runs reproduce.</summary>
    public int Seed { get; init; } = 0x5EED;

    public Action<string>? Log { get; init; }
}
