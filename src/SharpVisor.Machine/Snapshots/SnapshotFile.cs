using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace SharpVisor.Machine.Snapshots;

/// <summary>
/// The state file of a snapshot (docs/snapshot.md): a magic, the format version, and named
/// sections, each with its length and a SHA-256 over its tag, length and payload. Reading checks
/// everything before anything is handed out, so a corrupt file is refused whole, with one line
/// naming the section.
/// </summary>
public sealed class SnapshotFile
{
    /// <summary>The format version this build writes and the only one it reads.</summary>
    public const uint FormatVersion = 3;

    /// <summary>Sections above this are not state a machine has: the file is corrupt.</summary>
    public const int MaxSectionBytes = 64 << 20;

    private const int MaxSections = 4096;
    private const int MaxTagBytes = 255;

    private static ReadOnlySpan<byte> Magic => "SVSNAP\r\n"u8;

    private readonly List<KeyValuePair<string, byte[]>> _sections = new();

    public IReadOnlyList<KeyValuePair<string, byte[]>> Sections => _sections;

    public void Add(string tag, byte[] payload)
    {
        int tagBytes = Encoding.UTF8.GetByteCount(tag);
        if (tagBytes is 0 or > MaxTagBytes)
        {
            throw new ArgumentException($"section tag '{tag}' must be 1 to {MaxTagBytes} bytes", nameof(tag));
        }

        if (_sections.Any(s => s.Key == tag))
        {
            throw new ArgumentException($"two snapshot sections are named '{tag}'", nameof(tag));
        }

        _sections.Add(new(tag, payload));
    }

    public void Add(ISnapshotable part)
    {
        var writer = new SnapshotWriter();
        part.SaveState(writer);
        Add(part.SnapshotTag, writer.ToArray());
    }

    public bool Contains(string tag) => _sections.Any(s => s.Key == tag);

    /// <summary>The reader of section <paramref name="tag"/>; a missing section is a <see cref="SnapshotException"/>.</summary>
    public SnapshotReader Open(string tag)
    {
        foreach (KeyValuePair<string, byte[]> section in _sections)
        {
            if (section.Key == tag)
            {
                return new SnapshotReader(tag, section.Value);
            }
        }

        throw new SnapshotException($"snapshot has no section '{tag}' (saved by a machine built differently)");
    }

    /// <summary>Loads <paramref name="part"/> from its section; the section must be read to its end.</summary>
    public void Load(ISnapshotable part)
    {
        SnapshotReader reader = Open(part.SnapshotTag);
        part.LoadState(reader);
        reader.EnsureEnd();
    }

    public void WriteTo(Stream stream)
    {
        Span<byte> word = stackalloc byte[8];
        stream.Write(Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(word, FormatVersion);
        stream.Write(word[..4]);
        BinaryPrimitives.WriteUInt32LittleEndian(word, (uint)_sections.Count);
        stream.Write(word[..4]);
        foreach ((string tag, byte[] payload) in _sections)
        {
            byte[] header = SectionHeader(tag, payload.Length);
            stream.Write(header);
            stream.Write(Digest(header, payload));
            stream.Write(payload);
        }
    }

    /// <summary>Writes the file whole, then renames it into place: a crash leaves the old file or the new one.</summary>
    public void Save(string path)
    {
        string temporary = path + ".tmp";
        using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write))
        {
            WriteTo(stream);
            stream.Flush(flushToDisk: true);
        }

        File.Move(temporary, path, overwrite: true);
    }

    public static SnapshotFile Load(string path)
    {
        byte[] data;
        try
        {
            data = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SnapshotException($"cannot read snapshot {path}: {e.Message}");
        }

        return Parse(data);
    }

    public static SnapshotFile Parse(ReadOnlySpan<byte> data)
    {
        if (data.Length < Magic.Length + 8 || !data[..Magic.Length].SequenceEqual(Magic))
        {
            throw new SnapshotException("not a SharpVisor snapshot (bad magic)");
        }

        uint version = BinaryPrimitives.ReadUInt32LittleEndian(data[Magic.Length..]);
        if (version != FormatVersion)
        {
            throw new SnapshotException($"snapshot format version {version} is not supported (this build reads version {FormatVersion})");
        }

        uint count = BinaryPrimitives.ReadUInt32LittleEndian(data[(Magic.Length + 4)..]);
        if (count > MaxSections)
        {
            throw new SnapshotException($"snapshot is corrupt: {count} sections");
        }

        var file = new SnapshotFile();
        int position = Magic.Length + 8;
        for (int i = 0; i < count; i++)
        {
            if (data.Length - position < 1)
            {
                throw new SnapshotException($"snapshot is truncated: section {i + 1} of {count} is missing");
            }

            int tagLength = data[position];
            int headerLength = 1 + tagLength + 8;
            if (data.Length - position < headerLength + 32)
            {
                throw new SnapshotException($"snapshot is truncated in the header of section {i + 1} of {count}");
            }

            ReadOnlySpan<byte> header = data.Slice(position, headerLength);
            string tag = Encoding.UTF8.GetString(header.Slice(1, tagLength));
            ulong length = BinaryPrimitives.ReadUInt64LittleEndian(header[(1 + tagLength)..]);
            ReadOnlySpan<byte> digest = data.Slice(position + headerLength, 32);
            position += headerLength + 32;
            if (length > MaxSectionBytes || (ulong)(data.Length - position) < length)
            {
                throw new SnapshotException($"snapshot section '{Printable(tag)}' is corrupt or truncated: {length} bytes, {data.Length - position} left in the file");
            }

            ReadOnlySpan<byte> payload = data.Slice(position, (int)length);
            position += (int)length;
            if (!Digest(header, payload).AsSpan().SequenceEqual(digest))
            {
                throw new SnapshotException($"snapshot section '{Printable(tag)}' is corrupt: SHA-256 mismatch");
            }

            try
            {
                file.Add(tag, payload.ToArray());
            }
            catch (ArgumentException e)
            {
                throw new SnapshotException($"snapshot is corrupt: {e.Message}");
            }
        }

        if (position != data.Length)
        {
            throw new SnapshotException($"snapshot is corrupt: {data.Length - position} bytes after the last section");
        }

        return file;
    }

    private static byte[] SectionHeader(string tag, int length)
    {
        byte[] tagBytes = Encoding.UTF8.GetBytes(tag);
        var header = new byte[1 + tagBytes.Length + 8];
        header[0] = (byte)tagBytes.Length;
        tagBytes.CopyTo(header, 1);
        BinaryPrimitives.WriteUInt64LittleEndian(header.AsSpan(1 + tagBytes.Length), (ulong)length);
        return header;
    }

    /// <summary>
    /// Computes one throw-away checksum, so the crypto library is loaded and its code ready before
    /// a caller's time-critical section (a migration's pause: the first SHA-256 of a process costs
    /// tens of milliseconds).
    /// </summary>
    public static void PrepareChecksums() => Digest([0], []);

    private static byte[] Digest(ReadOnlySpan<byte> header, ReadOnlySpan<byte> payload)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(header);
        sha.AppendData(payload);
        return sha.GetHashAndReset();
    }

    private static string Printable(string tag) => new(tag.Select(c => char.IsControl(c) ? '?' : c).ToArray());
}
