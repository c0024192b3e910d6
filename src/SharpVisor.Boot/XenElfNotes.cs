using System.Buffers.Binary;

namespace SharpVisor.Boot;

/// <summary>
/// The "Xen" ELF notes of a kernel (xen/include/public/elfnote.h): type → descriptor bytes, read
/// from the PT_NOTE segments. Malformed notes end the walk of their segment; a segment outside the
/// file is a boot error.
/// </summary>
public sealed class XenElfNotes
{
    public const uint Entry = 1;
    public const uint HypercallPage = 2;
    public const uint VirtBase = 3;
    public const uint PaddrOffset = 4;
    public const uint Features = 10;
    public const uint HvStartLow = 12;
    public const uint InitP2m = 15;
    public const uint ModStartPfn = 16;
    public const uint SupportedFeatures = 17;
    public const uint Phys32Entry = 18;

    private const uint NoteSegment = 4;

    private readonly Dictionary<uint, byte[]> _notes;

    private XenElfNotes(Dictionary<uint, byte[]> notes) => _notes = notes;

    public IReadOnlyCollection<uint> Types => _notes.Keys;

    public static XenElfNotes Read(string path, byte[] vmlinux, ElfFile elf)
    {
        ArgumentNullException.ThrowIfNull(vmlinux);
        ArgumentNullException.ThrowIfNull(elf);
        var notes = new Dictionary<uint, byte[]>();
        foreach (ElfProgramHeader segment in elf.ProgramHeaders.Where(p => p.Type == NoteSegment))
        {
            if (segment.Offset > (ulong)vmlinux.Length || segment.FileSize > (ulong)vmlinux.Length - segment.Offset)
            {
                throw new BootImageException(path, "a PT_NOTE segment is outside the file");
            }

            ReadOnlySpan<byte> rest = vmlinux.AsSpan((int)segment.Offset, (int)segment.FileSize);
            while (rest.Length >= 12)
            {
                uint nameSize = BinaryPrimitives.ReadUInt32LittleEndian(rest);
                uint descSize = BinaryPrimitives.ReadUInt32LittleEndian(rest[4..]);
                uint type = BinaryPrimitives.ReadUInt32LittleEndian(rest[8..]);
                ulong nameEnd = 12 + Align4(nameSize);
                ulong end = nameEnd + Align4(descSize);
                if (end > (ulong)rest.Length)
                {
                    break;
                }

                if (rest.Slice(12, (int)nameSize).SequenceEqual("Xen\0"u8))
                {
                    notes.TryAdd(type, rest.Slice((int)nameEnd, (int)descSize).ToArray());
                }

                rest = rest[(int)end..];
            }
        }

        return new XenElfNotes(notes);
    }

    public bool Has(uint type) => _notes.ContainsKey(type);

    /// <summary>A numeric note (4 or 8 bytes), or null when absent or of another size.</summary>
    public ulong? Number(uint type) => _notes.TryGetValue(type, out byte[]? d)
        ? d.Length switch
        {
            4 => BinaryPrimitives.ReadUInt32LittleEndian(d),
            8 => BinaryPrimitives.ReadUInt64LittleEndian(d),
            _ => null,
        }
        : null;

    /// <summary>A string note (NUL-terminated ASCII), or null.</summary>
    public string? Text(uint type) => _notes.TryGetValue(type, out byte[]? d)
        ? System.Text.Encoding.ASCII.GetString(d).TrimEnd('\0')
        : null;

    private static ulong Align4(uint value) => ((ulong)value + 3) & ~3UL;
}
