namespace SharpVisor.Emulator.Mmu;

/// <summary>The access rights of a second-level (EPT-format) entry, bits 0-2.</summary>
[Flags]
public enum SecondLevelRights : byte
{
    None = 0,
    Read = 1 << 0,
    Write = 1 << 1,
    Execute = 1 << 2,
    All = Read | Write | Execute,
}
