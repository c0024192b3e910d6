namespace SharpVisor.Boot;

/// <summary>One ELF program header (Elf32_Phdr or Elf64_Phdr, widened).</summary>
public readonly record struct ElfProgramHeader(uint Type, uint Flags, ulong Offset, ulong VirtualAddress, ulong PhysicalAddress, ulong FileSize, ulong MemorySize)
{
    public const uint TypeLoad = 1;

    public bool IsLoad => Type == TypeLoad;
}
