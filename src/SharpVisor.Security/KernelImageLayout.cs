using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using SharpVisor.Boot;
using SharpVisor.Machine.Protection;

namespace SharpVisor.Security;

/// <summary>
/// What protection needs from the kernel image itself: the link-time ranges of kernel text and
/// of the read-only data that follows it, from the section headers of the vmlinux (taken out of
/// the bzImage: Debian's is stripped of symbols but keeps its sections), and the SHA-256 of the
/// image file, which quotes carry. The guest relocates these by its KASLR offset (found at lock).
/// </summary>
/// <remarks>
/// Read-only data is every allocated section from <c>.rodata</c> up to <c>.data</c>: on x86-64 that
/// is <c>.rodata</c> (with <c>__ro_after_init</c> and the system-call table), <c>__ex_table</c>,
/// <c>__ksymtab*</c>, <c>__param</c>, <c>.notes</c>, <c>.BTF</c>... — what <c>mark_rodata_ro</c>
/// makes read-only. The gap up to <c>.data</c> is freed by the kernel (its frames are reused), so the
/// ranges end at the last section, rounded up to a page.
/// </remarks>
public sealed class KernelImageLayout
{
    private const uint ElfSectionHeaderSize = 64;

    private KernelImageLayout(string digest, ProtectedRange text, IReadOnlyList<ProtectedRange> readOnlyData, IReadOnlyList<ElfSection> sections)
    {
        KernelDigest = digest;
        Text = text;
        ReadOnlyData = readOnlyData;
        Sections = sections;
    }

    /// <summary>SHA-256 of the kernel image file, lower-case hex.</summary>
    public string KernelDigest { get; }

    /// <summary>Kernel text at its link-time address (page-aligned).</summary>
    public ProtectedRange Text { get; }

    /// <summary>Read-only data at link-time addresses (page-aligned, merged).</summary>
    public IReadOnlyList<ProtectedRange> ReadOnlyData { get; }

    public IReadOnlyList<ElfSection> Sections { get; }

    /// <summary>The link-time bytes protected (text and read-only data).</summary>
    public ulong ProtectedBytes => Text.Length + (ulong)ReadOnlyData.Sum(r => (long)r.Length);

    public static KernelImageLayout Load(string kernelPath)
    {
        byte[] image = File.ReadAllBytes(kernelPath);
        return Parse(kernelPath, image);
    }

    public static KernelImageLayout Parse(string path, byte[] image)
    {
        string digest = Convert.ToHexStringLower(SHA256.HashData(image));
        byte[] vmlinux = PvhImage.ExtractVmlinux(path, image, out _);
        IReadOnlyList<ElfSection> sections = ReadSections(path, vmlinux);
        ElfSection text = Find(path, sections, ".text");
        ElfSection rodata = Find(path, sections, ".rodata");
        ElfSection data = Find(path, sections, ".data");
        if (!(text.End <= rodata.Address && rodata.Address < data.Address))
        {
            throw new BootImageException(path, "the kernel's .text, .rodata and .data sections are not in the x86-64 order");
        }

        var readOnly = new List<ProtectedRange>();
        foreach (ElfSection s in sections.Where(s => s.IsAllocated && s.Size > 0 && s.Address >= rodata.Address && s.Address < data.Address).OrderBy(s => s.Address))
        {
            var range = new ProtectedRange(s.Address & ~0xFFFUL, (Math.Min(s.End, data.Address) + 0xFFF) & ~0xFFFUL);
            if (readOnly.Count > 0 && readOnly[^1].End >= range.Start)
            {
                readOnly[^1] = readOnly[^1] with { End = Math.Max(readOnly[^1].End, range.End) };
            }
            else
            {
                readOnly.Add(range);
            }
        }

        var textRange = new ProtectedRange(text.Address & ~0xFFFUL, (text.End + 0xFFF) & ~0xFFFUL);
        return new KernelImageLayout(digest, textRange, readOnly, sections);
    }

    private static ElfSection Find(string path, IReadOnlyList<ElfSection> sections, string name) =>
        sections.FirstOrDefault(s => s.Name == name && s.IsAllocated)
            ?? throw new BootImageException(path, $"the kernel's vmlinux has no {name} section (section headers stripped?)");

    /// <summary>The section headers of an ELF64 file, every offset checked against its length.</summary>
    internal static IReadOnlyList<ElfSection> ReadSections(string path, ReadOnlySpan<byte> elf)
    {
        if (elf.Length < 64 || elf[4] != 2)
        {
            throw new BootImageException(path, "the kernel inside is not an ELF64 vmlinux");
        }

        ulong offset = BinaryPrimitives.ReadUInt64LittleEndian(elf[0x28..]);
        ushort entrySize = BinaryPrimitives.ReadUInt16LittleEndian(elf[0x3A..]);
        ushort count = BinaryPrimitives.ReadUInt16LittleEndian(elf[0x3C..]);
        ushort namesIndex = BinaryPrimitives.ReadUInt16LittleEndian(elf[0x3E..]);
        if (count == 0 || entrySize < ElfSectionHeaderSize || namesIndex >= count
            || offset > (ulong)elf.Length || (ulong)count * entrySize > (ulong)elf.Length - offset)
        {
            throw new BootImageException(path, "the vmlinux's section header table is missing or outside the file");
        }

        ReadOnlySpan<byte> names = Slice(path, elf, Header(elf, offset, entrySize, namesIndex));
        var sections = new List<ElfSection>(count);
        for (int i = 0; i < count; i++)
        {
            ReadOnlySpan<byte> h = Header(elf, offset, entrySize, i);
            uint nameOffset = BinaryPrimitives.ReadUInt32LittleEndian(h);
            string name = "";
            if (nameOffset < (uint)names.Length)
            {
                ReadOnlySpan<byte> rest = names[(int)nameOffset..];
                int end = rest.IndexOf((byte)0);
                name = Encoding.ASCII.GetString(end < 0 ? rest : rest[..end]);
            }

            ulong address = BinaryPrimitives.ReadUInt64LittleEndian(h[0x10..]);
            ulong size = BinaryPrimitives.ReadUInt64LittleEndian(h[0x20..]);
            if (address + size < address)
            {
                throw new BootImageException(path, $"section {name} wraps around the address space");
            }

            sections.Add(new ElfSection(name, BinaryPrimitives.ReadUInt32LittleEndian(h[4..]), BinaryPrimitives.ReadUInt64LittleEndian(h[8..]), address, size));
        }

        return sections;
    }

    private static ReadOnlySpan<byte> Header(ReadOnlySpan<byte> elf, ulong tableOffset, ushort entrySize, int index) =>
        elf.Slice((int)(tableOffset + ((ulong)index * entrySize)), (int)ElfSectionHeaderSize);

    private static ReadOnlySpan<byte> Slice(string path, ReadOnlySpan<byte> elf, ReadOnlySpan<byte> header)
    {
        ulong offset = BinaryPrimitives.ReadUInt64LittleEndian(header[0x18..]);
        ulong size = BinaryPrimitives.ReadUInt64LittleEndian(header[0x20..]);
        if (offset > (ulong)elf.Length || size > (ulong)elf.Length - offset)
        {
            throw new BootImageException(path, "the vmlinux's section names are outside the file");
        }

        return elf.Slice((int)offset, (int)size);
    }
}
