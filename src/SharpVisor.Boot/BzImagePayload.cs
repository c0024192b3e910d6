using System.Buffers.Binary;
using System.IO.Compression;

namespace SharpVisor.Boot;

/// <summary>
/// The compressed kernel inside a bzImage: payload_offset and payload_length (boot protocol 2.08+)
/// locate it in the protected-mode code; its first bytes say how it is compressed. Decompressed
/// payloads are kept weakly per process, so booting a kernel and then reading its sections (kernel
/// protection, a second boot in the same process) decodes it once while the result is alive.
/// </summary>
public static class BzImagePayload
{
    public const int OffsetField = 0x248;
    public const int LengthField = 0x24C;

    /// <summary>The largest vmlinux accepted from any decoder.</summary>
    public const int MaxOutput = Lz4LegacyFrame.MaxOutput;

    private static readonly Lock s_cacheLock = new();
    private static WeakReference<CachedPayload>? s_cache;

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

    /// <summary>Whether <see cref="Decompress"/> decodes this compression (what the default guest and most distributions use).</summary>
    public static bool CanDecompress(string? compression) => compression is "LZ4" or "gzip";

    /// <summary>The decompressed payload (an ELF vmlinux, maybe with relocations after it); shared, so callers must not change it.</summary>
    public static byte[] Decompress(string path, ReadOnlySpan<byte> payload, out string compression)
    {
        string? kind = Identify(payload);
        if (!CanDecompress(kind))
        {
            throw new BootImageException(path, $"payload compression ({kind ?? $"magic {payload[0]:x2} {payload[1]:x2} {payload[2]:x2} {payload[3]:x2}"}) is not LZ4 or gzip");
        }

        compression = kind!;
        lock (s_cacheLock)
        {
            if (s_cache is not null && s_cache.TryGetTarget(out CachedPayload? cached) && payload.SequenceEqual(cached.Compressed))
            {
                return cached.Vmlinux;
            }
        }

        byte[] vmlinux = kind == "LZ4" ? Lz4LegacyFrame.Decode(path, payload) : Gunzip(path, payload);
        lock (s_cacheLock)
        {
            s_cache = new WeakReference<CachedPayload>(new CachedPayload(payload.ToArray(), vmlinux));
        }

        return vmlinux;
    }

    private static byte[] Gunzip(string path, ReadOnlySpan<byte> payload)
    {
        try
        {
            using var input = new GZipStream(new MemoryStream(payload.ToArray()), CompressionMode.Decompress);
            using var output = new MemoryStream();
            byte[] buffer = new byte[1 << 16];
            int read;
            while ((read = input.Read(buffer)) > 0)
            {
                if (output.Length + read > MaxOutput)
                {
                    throw new BootImageException(path, $"gzip payload expands beyond {MaxOutput >> 20} MiB");
                }

                output.Write(buffer, 0, read);
            }

            return output.ToArray();
        }
        catch (InvalidDataException e)
        {
            throw new BootImageException(path, $"corrupt gzip payload: {e.Message}", e);
        }
    }

    private sealed record CachedPayload(byte[] Compressed, byte[] Vmlinux);
}
