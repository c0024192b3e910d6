namespace SharpVisor.Emulator.Mmu;

/// <summary>The processor features the MMU models; they must match what CPUID reports.</summary>
public sealed class MmuOptions
{
    /// <summary>MAXPHYADDR (CPUID 80000008H:EAX[7:0]): physical-address bits above it are reserved. 36 to 48.</summary>
    public int PhysicalAddressBits { get; init; } = 40;

    /// <summary>1 GiB pages (CPUID 80000001H:EDX.Page1GB); without them PDPTE.PS is a reserved bit.</summary>
    public bool Supports1GiBPages { get; init; } = true;

    /// <summary>
    /// Software TLB slots per privilege context; a power of two. Direct-mapped, so it needs room
    /// beyond the working set: with 1024 a default-guest boot refilled entries 4.1 M times (conflict
    /// misses, 57 ns each through the MMU), with 4096 0.3 M, for 0.5 MiB per vCPU.
    /// </summary>
    public int TlbSlots { get; init; } = 4096;

    /// <summary>
    /// Shadow mode: when more guest page-table pages than this are shadowed, all are dropped and
    /// rebuilt on demand. Bounds what a guest can make the host allocate (8 KiB per table).
    /// </summary>
    public int MaxShadowTables { get; init; } = 8192;

    /// <summary>
    /// Shadow mode: writes to a shadowed page-table page with no use of the page in between,
    /// after which the page is taken to be reused as data and no longer shadowed (as KVM's write-flooding detection).
    /// </summary>
    public int WriteFloodThreshold { get; init; } = 16;

    public static MmuOptions Default { get; } = new();

    internal void Validate()
    {
        if (PhysicalAddressBits is < 36 or > 48)
        {
            throw new ArgumentOutOfRangeException(nameof(PhysicalAddressBits), $"MAXPHYADDR {PhysicalAddressBits} is not between 36 and 48");
        }

        if (TlbSlots < 16 || TlbSlots > (1 << 20) || (TlbSlots & (TlbSlots - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(TlbSlots), $"TLB slots {TlbSlots} must be a power of two between 16 and 2^20");
        }

        if (MaxShadowTables < 8)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxShadowTables), "at least 8 shadow tables are needed to shadow one address space");
        }

        if (WriteFloodThreshold < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(WriteFloodThreshold), "the write-flood threshold must be positive");
        }
    }
}
