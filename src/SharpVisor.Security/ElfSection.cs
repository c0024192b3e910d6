namespace SharpVisor.Security;

/// <summary>One ELF64 section header, as far as protection needs it.</summary>
public sealed record ElfSection(string Name, uint Type, ulong Flags, ulong Address, ulong Size)
{
    public const ulong FlagWrite = 1;
    public const ulong FlagAlloc = 2;
    public const ulong FlagExecute = 4;
    public const uint TypeNoBits = 8;

    public bool IsAllocated => (Flags & FlagAlloc) != 0;

    public ulong End => Address + Size;
}
