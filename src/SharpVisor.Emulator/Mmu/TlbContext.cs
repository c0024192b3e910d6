namespace SharpVisor.Emulator.Mmu;

/// <summary>
/// The privilege context a software-TLB entry was filled for: rights differ per context, so each
/// has its own array (as QEMU's MMU indexes).
/// </summary>
public enum TlbContext
{
    /// <summary>CPL 0-2 with RFLAGS.AC = 0, and every implicit supervisor access: SMAP applies.</summary>
    Supervisor = 0,

    /// <summary>CPL 0-2 with RFLAGS.AC = 1: SMAP does not apply to data accesses.</summary>
    SupervisorAlignmentCheck = 1,

    /// <summary>CPL 3 explicit accesses.</summary>
    User = 2,
}
