using System.Buffers.Binary;
using SharpVisor.Memory;

namespace SharpVisor.Boot.Tests;

/// <summary>Builders for synthetic ELF and Multiboot images, and guest-memory readers for the checks.</summary>
internal static class TestImages
{
    public const uint MultibootMagic = 0x1BADB002;

    public static byte[] Pattern(int size, byte seed)
    {
        byte[] bytes = new byte[size];
        for (int i = 0; i < size; i++)
        {
            bytes[i] = (byte)(seed + i * 7 + (i >> 8));
        }

        return bytes;
    }

    /// <summary>One PT_LOAD segment: <paramref name="Data"/> at <paramref name="PhysicalAddress"/>, zero-filled up to <paramref name="MemorySize"/>.</summary>
    public sealed record Segment(ulong VirtualAddress, ulong PhysicalAddress, byte[] Data, ulong MemorySize);

    /// <summary>
    /// An ELF executable: header, program headers, then each segment's data at a 4 KiB-aligned
    /// file offset.
    /// </summary>
    public static byte[] Elf(int bits, ulong entry, IReadOnlyList<Segment> segments, ushort? machine = null)
    {
        int ehsize = bits == 64 ? 64 : 52;
        int phentsize = bits == 64 ? 56 : 32;
        int offset = 0x1000;
        var offsets = new List<int>();
        foreach (Segment s in segments)
        {
            offsets.Add(offset);
            offset += (s.Data.Length + 0xFFF) & ~0xFFF;
        }

        byte[] image = new byte[Math.Max(offset, 0x1000)];
        image[0] = 0x7F;
        image[1] = (byte)'E';
        image[2] = (byte)'L';
        image[3] = (byte)'F';
        image[4] = bits == 64 ? (byte)2 : (byte)1;
        image[5] = 1;
        image[6] = 1;
        Span<byte> s0 = image;
        BinaryPrimitives.WriteUInt16LittleEndian(s0[16..], 2); // ET_EXEC
        BinaryPrimitives.WriteUInt16LittleEndian(s0[18..], machine ?? (bits == 64 ? (ushort)62 : (ushort)3));
        BinaryPrimitives.WriteUInt32LittleEndian(s0[20..], 1);
        if (bits == 64)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(s0[24..], entry);
            BinaryPrimitives.WriteUInt64LittleEndian(s0[32..], (ulong)ehsize);
            BinaryPrimitives.WriteUInt16LittleEndian(s0[52..], (ushort)ehsize);
            BinaryPrimitives.WriteUInt16LittleEndian(s0[54..], (ushort)phentsize);
            BinaryPrimitives.WriteUInt16LittleEndian(s0[56..], (ushort)segments.Count);
        }
        else
        {
            BinaryPrimitives.WriteUInt32LittleEndian(s0[24..], (uint)entry);
            BinaryPrimitives.WriteUInt32LittleEndian(s0[28..], (uint)ehsize);
            BinaryPrimitives.WriteUInt16LittleEndian(s0[40..], (ushort)ehsize);
            BinaryPrimitives.WriteUInt16LittleEndian(s0[42..], (ushort)phentsize);
            BinaryPrimitives.WriteUInt16LittleEndian(s0[44..], (ushort)segments.Count);
        }

        for (int i = 0; i < segments.Count; i++)
        {
            Segment seg = segments[i];
            Span<byte> ph = image.AsSpan(ehsize + i * phentsize, phentsize);
            if (bits == 64)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(ph, 1);
                BinaryPrimitives.WriteUInt32LittleEndian(ph[4..], 7);
                BinaryPrimitives.WriteUInt64LittleEndian(ph[8..], (ulong)offsets[i]);
                BinaryPrimitives.WriteUInt64LittleEndian(ph[16..], seg.VirtualAddress);
                BinaryPrimitives.WriteUInt64LittleEndian(ph[24..], seg.PhysicalAddress);
                BinaryPrimitives.WriteUInt64LittleEndian(ph[32..], (ulong)seg.Data.Length);
                BinaryPrimitives.WriteUInt64LittleEndian(ph[40..], seg.MemorySize);
                BinaryPrimitives.WriteUInt64LittleEndian(ph[48..], 0x1000);
            }
            else
            {
                BinaryPrimitives.WriteUInt32LittleEndian(ph, 1);
                BinaryPrimitives.WriteUInt32LittleEndian(ph[4..], (uint)offsets[i]);
                BinaryPrimitives.WriteUInt32LittleEndian(ph[8..], (uint)seg.VirtualAddress);
                BinaryPrimitives.WriteUInt32LittleEndian(ph[12..], (uint)seg.PhysicalAddress);
                BinaryPrimitives.WriteUInt32LittleEndian(ph[16..], (uint)seg.Data.Length);
                BinaryPrimitives.WriteUInt32LittleEndian(ph[20..], (uint)seg.MemorySize);
                BinaryPrimitives.WriteUInt32LittleEndian(ph[24..], 7);
                BinaryPrimitives.WriteUInt32LittleEndian(ph[28..], 0x1000);
            }

            seg.Data.CopyTo(image, offsets[i]);
        }

        return image;
    }

    /// <summary>The 12-byte Multiboot header (magic, flags, checksum) plus, with flag bit 16, the five address fields.</summary>
    public static byte[] MultibootHeader(uint flags, uint headerAddr = 0, uint loadAddr = 0, uint loadEndAddr = 0, uint bssEndAddr = 0, uint entryAddr = 0, int? checksumDelta = null)
    {
        bool addressFields = (flags & (1u << 16)) != 0;
        byte[] header = new byte[addressFields ? 32 : 12];
        BinaryPrimitives.WriteUInt32LittleEndian(header, MultibootMagic);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(4), flags);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(8), unchecked(0u - MultibootMagic - flags + (uint)(checksumDelta ?? 0)));
        if (addressFields)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(12), headerAddr);
            BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(16), loadAddr);
            BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(20), loadEndAddr);
            BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(24), bssEndAddr);
            BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(28), entryAddr);
        }

        return header;
    }

    /// <summary>
    /// A raw a.out-kludge image: 0x40 bytes of pattern, the header at file offset 0x40, then
    /// pattern up to <paramref name="fileSize"/>. Loaded at 1 MiB; the header lands at 1 MiB + 0x40.
    /// </summary>
    public static byte[] AoutKludge(int fileSize = 0x3000, uint loadEndAddr = 0, uint bssEndAddr = 0x10_5000, uint entryAddr = 0x10_0100, uint flags = 0x0001_0003)
    {
        byte[] image = Pattern(fileSize, 0x33);
        MultibootHeader(flags, headerAddr: 0x10_0040, loadAddr: 0x10_0000, loadEndAddr, bssEndAddr, entryAddr).CopyTo(image, 0x40);
        return image;
    }

    public static uint U32(GuestMemory memory, ulong address) => memory.Read<uint>(address);

    public static string ReadCString(GuestMemory memory, ulong address)
    {
        var bytes = new List<byte>();
        for (ulong a = address; ; a++)
        {
            byte b = memory.Read<byte>(a);
            if (b == 0)
            {
                return System.Text.Encoding.UTF8.GetString(bytes.ToArray());
            }

            bytes.Add(b);
        }
    }
}
