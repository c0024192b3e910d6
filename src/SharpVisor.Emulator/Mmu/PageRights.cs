namespace SharpVisor.Emulator.Mmu;

/// <summary>The rights of a translation, combined over every paging level, and its leaf's flags.</summary>
[Flags]
public enum PageRights : byte
{
    None = 0,

    /// <summary>R/W = 1 at every level.</summary>
    Write = 1 << 0,

    /// <summary>U/S = 1 at every level: a user-mode page.</summary>
    User = 1 << 1,

    /// <summary>No level has XD = 1 (or EFER.NXE = 0).</summary>
    Execute = 1 << 2,

    /// <summary>The leaf has G = 1 and CR4.PGE = 1: survives CR3 loads.</summary>
    Global = 1 << 3,

    /// <summary>The leaf's dirty bit is set, so writes need no A/D update.</summary>
    Dirty = 1 << 4,

    /// <summary>The combined rights of an entry that restricts nothing.</summary>
    All = Write | User | Execute,
}
