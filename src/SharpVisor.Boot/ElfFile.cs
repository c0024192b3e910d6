using System.Buffers.Binary;

namespace SharpVisor.Boot;

/// <summary>
/// The parts of an ELF executable a loader needs: class, machine, entry and program headers.
/// Every offset and size is checked against the file before anything trusts it.
/// </summary>
public sealed class ElfFile
{
    public const ushort MachineI386 = 3;
    public const ushort MachineX86_64 = 62;

    private const ushort TypeExecutable = 2;
    private const int MaxProgramHeaders = 512;

    private ElfFile(int bits, ushort machine, ulong entry, IReadOnlyList<ElfProgramHeader> programHeaders)
    {
        Bits = bits;
        Machine = machine;
        Entry = entry;
        ProgramHeaders = programHeaders;
    }

    /// <summary>32 or 64.</summary>
    public int Bits { get; }

    public ushort Machine { get; }

    public ulong Entry { get; }

    public IReadOnlyList<ElfProgramHeader> ProgramHeaders { get; }

    public IEnumerable<ElfProgramHeader> LoadSegments => ProgramHeaders.Where(p => p.IsLoad && p.MemorySize > 0);

    public static bool HasElfMagic(ReadOnlySpan<byte> image) =>
        image.Length >= 4 && image[0] == 0x7F && image[1] == (byte)'E' && image[2] == (byte)'L' && image[3] == (byte)'F';

    /// <summary>Parses the header and program headers of a little-endian x86 executable.</summary>
    public static ElfFile Parse(string path, ReadOnlySpan<byte> image)
    {
        if (!HasElfMagic(image))
        {
            throw new BootImageException(path, "not an ELF file (no \\x7fELF magic)");
        }

        if (image.Length < 52)
        {
            throw new BootImageException(path, $"truncated ELF: {image.Length} bytes is shorter than an ELF header");
        }

        int bits = image[4] switch
        {
            1 => 32,
            2 => 64,
            _ => throw new BootImageException(path, $"ELF class {image[4]} is neither 32- nor 64-bit"),
        };
        if (image[5] != 1)
        {
            throw new BootImageException(path, "ELF file is not little-endian");
        }

        if (bits == 64 && image.Length < 64)
        {
            throw new BootImageException(path, $"truncated ELF: {image.Length} bytes is shorter than an ELF64 header");
        }

        ushort type = U16(image, 16);
        ushort machine = U16(image, 18);
        if (type != TypeExecutable)
        {
            throw new BootImageException(path, $"ELF type {type} is not an executable (ET_EXEC)");
        }

        ushort expectedMachine = bits == 64 ? MachineX86_64 : MachineI386;
        if (machine != expectedMachine)
        {
            throw new BootImageException(path, $"ELF{bits} machine {machine} is not {(bits == 64 ? "x86-64" : "i386")}");
        }

        ulong entry, phoff;
        int phentsize, phnum, expectedEntrySize;
        if (bits == 64)
        {
            entry = U64(image, 24);
            phoff = U64(image, 32);
            phentsize = U16(image, 54);
            phnum = U16(image, 56);
            expectedEntrySize = 56;
        }
        else
        {
            entry = U32(image, 24);
            phoff = U32(image, 28);
            phentsize = U16(image, 42);
            phnum = U16(image, 44);
            expectedEntrySize = 32;
        }

        if (phnum == 0)
        {
            throw new BootImageException(path, "ELF file has no program headers");
        }

        if (phentsize != expectedEntrySize || phnum > MaxProgramHeaders)
        {
            throw new BootImageException(path, $"ELF program header table is malformed ({phnum} entries of {phentsize} bytes)");
        }

        ulong tableSize = (ulong)phnum * (ulong)phentsize;
        if (phoff > (ulong)image.Length || tableSize > (ulong)image.Length - phoff)
        {
            throw new BootImageException(path, $"ELF program headers at 0x{phoff:x} (+0x{tableSize:x}) lie outside the {image.Length}-byte file");
        }

        var headers = new List<ElfProgramHeader>(phnum);
        for (int i = 0; i < phnum; i++)
        {
            ReadOnlySpan<byte> ph = image.Slice((int)phoff + i * phentsize, phentsize);
            ElfProgramHeader header = bits == 64
                ? new ElfProgramHeader(U32(ph, 0), U32(ph, 4), U64(ph, 8), U64(ph, 16), U64(ph, 24), U64(ph, 32), U64(ph, 40))
                : new ElfProgramHeader(U32(ph, 0), U32(ph, 24), U32(ph, 4), U32(ph, 8), U32(ph, 12), U32(ph, 16), U32(ph, 20));
            if (header.IsLoad)
            {
                Validate(path, i, header, (ulong)image.Length);
            }

            headers.Add(header);
        }

        return new ElfFile(bits, machine, entry, headers);
    }

    private static void Validate(string path, int index, ElfProgramHeader h, ulong fileLength)
    {
        if (h.Offset > fileLength || h.FileSize > fileLength - h.Offset)
        {
            throw new BootImageException(path, $"ELF segment {index} (file offset 0x{h.Offset:x} + 0x{h.FileSize:x}) lies outside the {fileLength}-byte file");
        }

        if (h.FileSize > h.MemorySize)
        {
            throw new BootImageException(path, $"ELF segment {index} has more file bytes (0x{h.FileSize:x}) than memory bytes (0x{h.MemorySize:x})");
        }

        if (h.PhysicalAddress + h.MemorySize < h.PhysicalAddress)
        {
            throw new BootImageException(path, $"ELF segment {index} at 0x{h.PhysicalAddress:x} + 0x{h.MemorySize:x} wraps the address space");
        }
    }

    private static ushort U16(ReadOnlySpan<byte> s, int offset) => BinaryPrimitives.ReadUInt16LittleEndian(s[offset..]);

    private static uint U32(ReadOnlySpan<byte> s, int offset) => BinaryPrimitives.ReadUInt32LittleEndian(s[offset..]);

    private static ulong U64(ReadOnlySpan<byte> s, int offset) => BinaryPrimitives.ReadUInt64LittleEndian(s[offset..]);
}
