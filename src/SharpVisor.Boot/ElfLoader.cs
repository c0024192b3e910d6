using SharpVisor.Memory;

namespace SharpVisor.Boot;

/// <summary>Copies an ELF executable's PT_LOAD segments to their physical addresses (p_paddr).</summary>
internal static class ElfLoader
{
    /// <summary>Loads every non-empty PT_LOAD segment, zeroing its bss tail; returns the end of the highest one.</summary>
    public static ulong LoadSegments(GuestMemory memory, MemoryPlan plan, string path, ReadOnlySpan<byte> image, ElfFile elf)
    {
        ulong end = 0;
        int index = 0;
        foreach (ElfProgramHeader segment in elf.LoadSegments)
        {
            plan.Place(path, $"kernel segment {index++}", segment.PhysicalAddress, segment.MemorySize);
            memory.Write(segment.PhysicalAddress, image.Slice((int)segment.Offset, (int)segment.FileSize));
            Zero(memory, segment.PhysicalAddress + segment.FileSize, segment.MemorySize - segment.FileSize);

            end = Math.Max(end, segment.PhysicalAddress + segment.MemorySize);
        }

        if (index == 0)
        {
            throw new BootImageException(path, "ELF file has no loadable (PT_LOAD) segments");
        }

        return end;
    }

    /// <summary>Zeroes a range that may be larger than one span can hold.</summary>
    public static void Zero(GuestMemory memory, ulong address, ulong length)
    {
        const int Chunk = 1 << 30;
        while (length > 0)
        {
            int count = (int)Math.Min(length, Chunk);
            memory.Fill(address, count, 0);
            address += (ulong)count;
            length -= (ulong)count;
        }
    }

    /// <summary>True when <paramref name="physical"/> lies inside one of the loaded segments.</summary>
    public static bool IsInsideSegment(ElfFile elf, ulong physical) =>
        elf.LoadSegments.Any(s => physical >= s.PhysicalAddress && physical - s.PhysicalAddress < s.MemorySize);
}
