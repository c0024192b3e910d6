using System.Buffers.Binary;
using System.Text;

namespace SharpVisor.Security.Tests;

/// <summary>A minimal ELF64 "vmlinux" with the section headers kernel protection reads.</summary>
internal static class SyntheticKernel
{
    public const ulong TextStart = 0xFFFF_FFFF_8100_0000;
    public const ulong TextSize = 0x3000;
    public const ulong RodataStart = 0xFFFF_FFFF_8120_0000;
    public const ulong RodataSize = 0x1800;
    public const ulong ExTableStart = 0xFFFF_FFFF_8120_1800;
    public const ulong ExTableSize = 0x900;
    public const ulong DataStart = 0xFFFF_FFFF_8140_0000;
    public const ulong BssEnd = 0xFFFF_FFFF_8160_0000;

    public static byte[] Build()
    {
        (string Name, uint Type, ulong Flags, ulong Address, ulong Size)[] sections =
        [
            ("", 0, 0, 0, 0),
            (".text", 1, 6, TextStart, TextSize),
            (".rodata", 1, 3, RodataStart, RodataSize),  // WA: __ro_after_init lives in it
            ("__ex_table", 1, 2, ExTableStart, ExTableSize),
            (".data", 1, 3, DataStart, 0x1000),
            (".bss", 8, 3, DataStart + 0x1000, BssEnd - DataStart - 0x1000),
            (".init.text", 1, 6, 0xFFFF_FFFF_8170_0000, 0x1000),
            (".shstrtab", 3, 0, 0, 0),
        ];
        var names = new StringBuilder();
        var nameOffsets = new List<int>();
        foreach (var s in sections)
        {
            nameOffsets.Add(names.Length);
            names.Append(s.Name).Append('\0');
        }

        byte[] nameBytes = Encoding.ASCII.GetBytes(names.ToString());
        int namesOffset = 64;
        int tableOffset = (namesOffset + nameBytes.Length + 7) & ~7;
        var image = new byte[tableOffset + (64 * sections.Length)];
        image[0] = 0x7F;
        image[1] = (byte)'E';
        image[2] = (byte)'L';
        image[3] = (byte)'F';
        image[4] = 2;
        image[5] = 1;
        BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(16), 2);
        BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(18), 62);
        BinaryPrimitives.WriteUInt64LittleEndian(image.AsSpan(0x28), (ulong)tableOffset);
        BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(0x3A), 64);
        BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(0x3C), (ushort)sections.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(0x3E), (ushort)(sections.Length - 1));
        nameBytes.CopyTo(image, namesOffset);
        for (int i = 0; i < sections.Length; i++)
        {
            Span<byte> h = image.AsSpan(tableOffset + (64 * i), 64);
            var s = sections[i];
            BinaryPrimitives.WriteUInt32LittleEndian(h, (uint)nameOffsets[i]);
            BinaryPrimitives.WriteUInt32LittleEndian(h[4..], s.Type);
            BinaryPrimitives.WriteUInt64LittleEndian(h[8..], s.Flags);
            BinaryPrimitives.WriteUInt64LittleEndian(h[0x10..], s.Address);
            if (s.Name == ".shstrtab")
            {
                BinaryPrimitives.WriteUInt64LittleEndian(h[0x18..], (ulong)namesOffset);
                BinaryPrimitives.WriteUInt64LittleEndian(h[0x20..], (ulong)nameBytes.Length);
            }
            else
            {
                BinaryPrimitives.WriteUInt64LittleEndian(h[0x20..], s.Size);
            }
        }

        return image;
    }
}
