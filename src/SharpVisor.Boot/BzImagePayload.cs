using System.Buffers.Binary;
using System.IO.Compression;

namespace SharpVisor.Boot;

/// <summary>
/// The compressed kernel inside a bzImage: payload_offset and payload_length (boot protocol 2.08+)
/// locate it in the protected-mode code; its first bytes say how it is compressed. Nothing is
/// cached: a decoded kernel is some 50 MiB a VMM would otherwise keep for its whole life.
/// </summary>
public static class BzImagePayload
{
    public const int OffsetField = 0x248;
    public const int LengthField = 0x24C;

    /// <summary>The largest vmlinux accepted from any decoder.</summary>
    public const int MaxOutput = Lz4LegacyFrame.MaxOutput;

    /// <summary>The payload's bytes; a <see cref="BootImageException"/> when the header points outside the file.</summary>
    public static ReadOnlySpan<byte> Find(string path, byte[] image, int setupSize)
    {
        uint offset = BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(OffsetField));
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(LengthField));
        ulong start = (ulong)setupSize + offset;
        if (length < 8 || start + length > (ulong)image.Length)
        {
            throw new BootImageException(path, $"payload 0x{offset:x}+0x{length:x} is outside the file");
        }

        return image.AsSpan((int)start, (int)length);
    }

    /// <summary>The compression Linux's build used, from the payload's magic (the KERNEL_* choices), or null.</summary>
    public static string? Identify(ReadOnlySpan<byte> payload) => payload switch
    {
        _ when Lz4LegacyFrame.HasMagic(payload) => "LZ4",
        [0x1F, 0x8B, ..] => "gzip",
        [0xFD, (byte)'7', (byte)'z', (byte)'X', (byte)'Z', 0, ..] => "xz",
        [0x28, 0xB5, 0x2F, 0xFD, ..] => "zstd",
        [(byte)'B', (byte)'Z', (byte)'h', ..] => "bzip2",
        [0x89, (byte)'L', (byte)'Z', (byte)'O', ..] => "LZO",
        [0x5D, 0, 0, ..] => "LZMA",
        _ => null,
    };

    /// <summary>Whether this compression is decoded here (what the default guest and most distributions use).</summary>
    public static bool CanDecompress(string? compression) => compression is "LZ4" or "gzip";

    /// <summary>The decompressed payload (an ELF vmlinux, maybe with relocations after it).</summary>
    public static byte[] Decompress(string path, ReadOnlySpan<byte> payload, out string compression)
    {
        byte[] vmlinux = GC.AllocateUninitializedArray<byte>(DecompressedSize(path, payload, out compression));
        DecompressInto(path, payload, vmlinux);
        return vmlinux;
    }

    /// <summary>
    /// How many bytes the payload expands to, from its trailer (LZ4: the size Linux's build
    /// appends; gzip: ISIZE): 1 byte to <see cref="MaxOutput"/>, or a <see cref="BootImageException"/>.
    /// </summary>
    public static int DecompressedSize(string path, ReadOnlySpan<byte> payload, out string compression)
    {
        string? kind = Identify(payload);
        if (!CanDecompress(kind))
        {
            throw new BootImageException(path, $"payload compression ({kind ?? $"magic {payload[0]:x2} {payload[1]:x2} {payload[2]:x2} {payload[3]:x2}"}) is not LZ4 or gzip");
        }

        compression = kind!;
        if (kind == "LZ4")
        {
            return Lz4LegacyFrame.DeclaredSize(path, payload);
        }

        uint size = BinaryPrimitives.ReadUInt32LittleEndian(payload[^4..]);
        return size is > 0 and <= MaxOutput ? (int)size : throw new BootImageException(path, $"gzip payload declares {size} bytes uncompressed");
    }

    /// <summary>Decompresses into <paramref name="output"/>, which must be <see cref="DecompressedSize"/> bytes; the payload must fill it exactly.</summary>
    public static void DecompressInto(string path, ReadOnlySpan<byte> payload, Span<byte> output)
    {
        int size = DecompressedSize(path, payload, out string compression);
        if (output.Length != size)
        {
            throw new ArgumentException($"the output is {output.Length} bytes, the payload expands to {size}", nameof(output));
        }

        if (compression == "LZ4")
        {
            Lz4LegacyFrame.Decode(path, payload, output);
        }
        else
        {
            Gunzip(path, payload, output);
        }
    }

    private static unsafe void Gunzip(string path, ReadOnlySpan<byte> payload, Span<byte> output)
    {
        try
        {
            fixed (byte* compressed = payload)
            {
                using var input = new GZipStream(new UnmanagedMemoryStream(compressed, payload.Length), CompressionMode.Decompress);
                int written = 0;
                int read;
                while (written < output.Length && (read = input.Read(output[written..])) > 0)
                {
                    written += read;
                }

                if (written != output.Length || input.Read(stackalloc byte[1]) != 0)
                {
                    throw new BootImageException(path, $"gzip payload does not expand to the {output.Length} bytes it declares");
                }
            }
        }
        catch (InvalidDataException e)
        {
            throw new BootImageException(path, $"corrupt gzip payload: {e.Message}", e);
        }
    }
}
