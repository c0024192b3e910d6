using System.Buffers.Binary;

namespace SharpVisor.Boot;

/// <summary>
/// The Multiboot v1 header (Multiboot Specification 0.6.96, section 3.1): magic, flags and
/// checksum, 4-byte aligned within the first 8192 bytes of the image, followed by the a.out
/// kludge address fields when flag bit 16 is set.
/// </summary>
public sealed class MultibootHeader
{
    public const uint Magic = 0x1BADB002;

    /// <summary>The value EAX holds when a Multiboot loader enters the kernel.</summary>
    public const uint BootloaderMagic = 0x2BADB002;

    public const int SearchLimit = 8192;

    public const uint FlagPageAlignModules = 1u << 0;
    public const uint FlagMemoryInfo = 1u << 1;
    public const uint FlagVideoMode = 1u << 2;
    public const uint FlagAddressFields = 1u << 16;

    /// <summary>Bits 0-15 are requirements: a loader that cannot meet one must refuse the kernel.</summary>
    public const uint RequiredFlagsMask = 0xFFFF;

    /// <summary>The requirements this loader meets: page-aligned modules and memory information.</summary>
    public const uint SupportedRequiredFlags = FlagPageAlignModules | FlagMemoryInfo;

    private const int BaseSize = 12;
    private const int AddressFieldsSize = 32;

    private MultibootHeader()
    {
    }

    /// <summary>Offset of the magic in the file.</summary>
    public int FileOffset { get; private init; }

    public uint Flags { get; private init; }

    public bool HasAddressFields => (Flags & FlagAddressFields) != 0;

    public uint HeaderAddress { get; private init; }

    public uint LoadAddress { get; private init; }

    public uint LoadEndAddress { get; private init; }

    public uint BssEndAddress { get; private init; }

    public uint EntryAddress { get; private init; }

    /// <summary>
    /// The first header with a valid checksum, or null when the magic is nowhere. A magic whose
    /// checksum is wrong (and no valid header after it) is an error: the file meant to be Multiboot.
    /// </summary>
    public static MultibootHeader? Find(string path, ReadOnlySpan<byte> image)
    {
        int limit = Math.Min(image.Length, SearchLimit);
        int badChecksumAt = -1;
        for (int offset = 0; offset + BaseSize <= limit; offset += 4)
        {
            if (U32(image, offset) != Magic)
            {
                continue;
            }

            uint flags = U32(image, offset + 4);
            uint checksum = U32(image, offset + 8);
            if (unchecked(Magic + flags + checksum) != 0)
            {
                badChecksumAt = badChecksumAt < 0 ? offset : badChecksumAt;
                continue;
            }

            bool addressFields = (flags & FlagAddressFields) != 0;
            if (addressFields && offset + AddressFieldsSize > limit)
            {
                throw new BootImageException(path, $"Multiboot header at offset 0x{offset:x} sets flag bit 16 but its address fields run past the first 8 KiB or the end of the file");
            }

            return new MultibootHeader
            {
                FileOffset = offset,
                Flags = flags,
                HeaderAddress = addressFields ? U32(image, offset + 12) : 0,
                LoadAddress = addressFields ? U32(image, offset + 16) : 0,
                LoadEndAddress = addressFields ? U32(image, offset + 20) : 0,
                BssEndAddress = addressFields ? U32(image, offset + 24) : 0,
                EntryAddress = addressFields ? U32(image, offset + 28) : 0,
            };
        }

        if (badChecksumAt >= 0)
        {
            throw new BootImageException(path, $"Multiboot header at offset 0x{badChecksumAt:x} has a bad checksum (magic + flags + checksum must be 0)");
        }

        return null;
    }

    private static uint U32(ReadOnlySpan<byte> s, int offset) => BinaryPrimitives.ReadUInt32LittleEndian(s[offset..]);
}
