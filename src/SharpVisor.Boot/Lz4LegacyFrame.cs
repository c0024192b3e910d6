using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace SharpVisor.Boot;

/// <summary>
/// The LZ4 legacy frame format (`lz4 -l`) Linux compresses its bzImage payload with under
/// CONFIG_KERNEL_LZ4: the magic 0x184C2102, then blocks of (le32 compressed size, LZ4 block) that
/// each expand to at most 8 MiB; the kernel's build appends the le32 uncompressed size. Every
/// length and match offset is checked: a corrupt payload is a <see cref="BootImageException"/>.
/// </summary>
public static class Lz4LegacyFrame
{
    public const uint Magic = 0x184C_2102;

    /// <summary>The largest vmlinux accepted: 512 MiB.</summary>
    public const int MaxOutput = 512 << 20;

    private const int MaxBlockOutput = 8 << 20;

    public static bool HasMagic(ReadOnlySpan<byte> data) => data.Length >= 4 && BinaryPrimitives.ReadUInt32LittleEndian(data) == Magic;

    public static byte[] Decode(string path, ReadOnlySpan<byte> data)
    {
        // Every byte is written before Decode's length check passes.
        byte[] output = GC.AllocateUninitializedArray<byte>(DeclaredSize(path, data));
        Decode(path, data, output);
        return output;
    }

    /// <summary>The uncompressed size the kernel's build appended (checked: 1 byte to <see cref="MaxOutput"/>).</summary>
    public static int DeclaredSize(string path, ReadOnlySpan<byte> data)
    {
        if (!HasMagic(data) || data.Length < 8)
        {
            throw new BootImageException(path, "payload is not an LZ4 legacy frame");
        }

        uint declared = BinaryPrimitives.ReadUInt32LittleEndian(data[^4..]);
        if (declared == 0 || declared > MaxOutput)
        {
            throw new BootImageException(path, $"LZ4 payload declares {declared} bytes uncompressed");
        }

        return (int)declared;
    }

    /// <summary>Decodes the frame into <paramref name="output"/>, which must be <see cref="DeclaredSize"/> bytes; the frame must fill it exactly.</summary>
    public static void Decode(string path, ReadOnlySpan<byte> data, Span<byte> output)
    {
        int declared = DeclaredSize(path, data);
        if (output.Length != declared)
        {
            throw new ArgumentException($"the output is {output.Length} bytes, the frame declares {declared}", nameof(output));
        }

        int written = 0;
        int position = 4;
        while (data.Length - position >= 4)
        {
            uint size = BinaryPrimitives.ReadUInt32LittleEndian(data[position..]);
            position += 4;
            if (size == Magic)
            {
                continue;   // concatenated frames
            }

            if (size > (uint)(data.Length - position))
            {
                // The trailing le32 size (or garbage) after the last block ends the stream.
                position -= 4;
                break;
            }

            int limit = Math.Min(MaxBlockOutput, output.Length - written);
            written += DecodeBlock(path, data.Slice(position, (int)size), output.Slice(written, limit));
            position += (int)size;
        }

        if (written != output.Length)
        {
            throw new BootImageException(path, $"LZ4 payload expanded to {written} bytes, not the {declared} it declares");
        }
    }

    /// <summary>
    /// One raw LZ4 block into <paramref name="output"/>; returns the bytes written. Every length and
    /// offset is checked before it is used; short literal runs and matches are copied 16 bytes at a
    /// time where both buffers have that much room left (the bytes past the run are written again by
    /// what follows), which is what keeps a 50 MiB kernel's decode to tens of milliseconds.
    /// </summary>
    public static int DecodeBlock(string path, ReadOnlySpan<byte> input, Span<byte> output)
    {
        ref byte source = ref MemoryMarshal.GetReference(input);
        ref byte target = ref MemoryMarshal.GetReference(output);
        int ip = 0, op = 0;
        while (ip < input.Length)
        {
            byte token = input[ip++];
            int literals = ReadLength(path, input, ref ip, token >> 4);
            if (literals > input.Length - ip || literals > output.Length - op)
            {
                throw Corrupt(path, "literal run overruns the block");
            }

            if (literals <= WideCopy && input.Length - ip >= WideCopy && output.Length - op >= WideCopy)
            {
                Unsafe.CopyBlockUnaligned(ref Unsafe.Add(ref target, op), ref Unsafe.Add(ref source, ip), WideCopy);
            }
            else
            {
                input.Slice(ip, literals).CopyTo(output[op..]);
            }

            ip += literals;
            op += literals;
            if (ip == input.Length)
            {
                break;   // the last sequence has literals only
            }

            if (input.Length - ip < 2)
            {
                throw Corrupt(path, "match offset cut off");
            }

            int offset = input[ip] | (input[ip + 1] << 8);
            ip += 2;
            if (offset == 0 || offset > op)
            {
                throw Corrupt(path, $"match offset {offset} points before the output");
            }

            int match = ReadLength(path, input, ref ip, token & 0xF) + 4;
            if (match > output.Length - op)
            {
                throw Corrupt(path, "match overruns the output");
            }

            CopyMatch(output, op, offset, match);
            op += match;
        }

        return op;
    }

    private const int WideCopy = 16;

    /// <summary>Copies <paramref name="match"/> bytes from <paramref name="offset"/> back; the caller checked both ends.</summary>
    private static void CopyMatch(Span<byte> output, int op, int offset, int match)
    {
        int from = op - offset;
        if (offset >= WideCopy && output.Length - op >= match + WideCopy)
        {
            // Each 16-byte step reads only bytes written before it (offset >= 16).
            ref byte target = ref MemoryMarshal.GetReference(output);
            for (int i = 0; i < match; i += WideCopy)
            {
                Unsafe.CopyBlockUnaligned(ref Unsafe.Add(ref target, op + i), ref Unsafe.Add(ref target, from + i), WideCopy);
            }
        }
        else if (offset >= match)
        {
            output.Slice(from, match).CopyTo(output[op..]);
        }
        else
        {
            // A repeating pattern (offset < length, e.g. runs of zeros): copy what is there, which
            // doubles the pattern each time, until the match is complete.
            int end = op + match;
            while (op < end)
            {
                int count = Math.Min(end - op, op - from);
                output.Slice(from, count).CopyTo(output[op..]);
                op += count;
            }
        }
    }

    private static int ReadLength(string path, ReadOnlySpan<byte> input, ref int ip, int nibble)
    {
        int length = nibble;
        if (nibble != 15)
        {
            return length;
        }

        byte b;
        do
        {
            if (ip >= input.Length || length > MaxOutput)
            {
                throw Corrupt(path, "length cut off");
            }

            b = input[ip++];
            length += b;
        }
        while (b == 255);
        return length;
    }

    private static BootImageException Corrupt(string path, string what) => new(path, $"corrupt LZ4 payload: {what}");
}
