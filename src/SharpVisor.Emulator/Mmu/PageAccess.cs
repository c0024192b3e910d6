namespace SharpVisor.Emulator.Mmu;

/// <summary>
/// What a linear memory access is, as the page walk and the #PF error code see it. The bit
/// values of <see cref="Write"/>, <see cref="User"/> and <see cref="Execute"/> are those of the
/// page-fault error code, so building an error code is a mask.
/// </summary>
[Flags]
public enum PageAccess : byte
{
    /// <summary>A supervisor-mode data read (CPL 0-2).</summary>
    Read = 0,

    /// <summary>A data write.</summary>
    Write = 1 << 1,

    /// <summary>An explicit access made at CPL 3.</summary>
    User = 1 << 2,

    /// <summary>An instruction fetch.</summary>
    Execute = 1 << 4,

    /// <summary>
    /// An implicit supervisor-mode access (GDT, LDT, IDT, TSS), whatever the CPL: checked as
    /// supervisor and, under SMAP, refused for user pages even when RFLAGS.AC is set.
    /// Takes precedence over <see cref="User"/>.
    /// </summary>
    Implicit = 1 << 5,

    /// <summary>RFLAGS.AC was set: SMAP does not apply to explicit supervisor data accesses.</summary>
    AlignmentCheck = 1 << 6,
}
