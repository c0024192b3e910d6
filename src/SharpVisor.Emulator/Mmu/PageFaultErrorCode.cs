namespace SharpVisor.Emulator.Mmu;

/// <summary>The error code a #PF pushes (Intel SDM vol. 3, 4.7).</summary>
[Flags]
public enum PageFaultErrorCode : uint
{
    /// <summary>Clear: the page was not present. Set: a protection or reserved-bit violation.</summary>
    Present = 1 << 0,

    /// <summary>The access was a write.</summary>
    Write = 1 << 1,

    /// <summary>The access was a user-mode (CPL 3, explicit) access.</summary>
    User = 1 << 2,

    /// <summary>A paging-structure entry had a reserved bit set.</summary>
    ReservedBit = 1 << 3,

    /// <summary>The access was an instruction fetch (reported only under SMEP or PAE with EFER.NXE).</summary>
    InstructionFetch = 1 << 4,
}
