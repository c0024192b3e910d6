using System.Buffers.Binary;

namespace SharpVisor.Boot;

/// <summary>
/// Linux's struct boot_params (the "zero page"), built fresh in a 4 KiB buffer. The setup
/// header lives at 0x1F1 both in the bzImage file and in boot_params, so its field offsets
/// serve for parsing the image too. Offsets from Documentation/arch/x86/zero-page.rst and
/// boot.rst.
/// </summary>
public sealed class BootParams
{
    public const int Size = 4096;

    public const int AcpiRsdpAddrOffset = 0x070;
    public const int ExtRamdiskImageOffset = 0x0C0;
    public const int ExtRamdiskSizeOffset = 0x0C4;
    public const int ExtCmdLinePtrOffset = 0x0C8;
    public const int E820EntriesOffset = 0x1E8;
    public const int SentinelOffset = 0x1EF;

    // struct setup_header
    public const int SetupHeaderOffset = 0x1F1;
    public const int SetupSectsOffset = 0x1F1;
    public const int SysSizeOffset = 0x1F4;
    public const int BootFlagOffset = 0x1FE;
    public const int JumpOffset = 0x200;
    public const int HeaderMagicOffset = 0x202;
    public const int VersionOffset = 0x206;
    public const int TypeOfLoaderOffset = 0x210;
    public const int LoadFlagsOffset = 0x211;
    public const int Code32StartOffset = 0x214;
    public const int RamdiskImageOffset = 0x218;
    public const int RamdiskSizeOffset = 0x21C;
    public const int HeapEndPtrOffset = 0x224;
    public const int CmdLinePtrOffset = 0x228;
    public const int InitrdAddrMaxOffset = 0x22C;
    public const int KernelAlignmentOffset = 0x230;
    public const int RelocatableKernelOffset = 0x234;
    public const int MinAlignmentOffset = 0x235;
    public const int XLoadFlagsOffset = 0x236;
    public const int CmdlineSizeOffset = 0x238;
    public const int SetupDataOffset = 0x250;
    public const int PrefAddressOffset = 0x258;
    public const int InitSizeOffset = 0x260;

    /// <summary>The setup header cannot reach past this (edd_mbr_sig_buffer starts at 0x290; the header is capped at 144 bytes).</summary>
    public const int SetupHeaderMaxEnd = 0x281;

    public const int E820TableOffset = 0x2D0;

    public const ushort BootFlag = 0xAA55;

    /// <summary>"HdrS" read as a little-endian u32.</summary>
    public const uint HeaderMagic = 0x5372_6448;

    /// <summary>type_of_loader 0xFF: "undefined" loader, the value for loaders without an assigned id.</summary>
    public const byte LoaderTypeUndefined = 0xFF;

    public const byte LoadedHigh = 0x01;

    /// <summary>loadflags bit 1: set by the kernel's decompressor when it randomized the kernel's address.</summary>
    public const byte KaslrFlag = 0x02;
    public const byte CanUseHeap = 0x80;

    public const ushort XlfKernel64 = 1 << 0;
    public const ushort XlfCanBeLoadedAbove4G = 1 << 1;

    /// <summary>heap_end_ptr value: end of the real-mode heap at 0xFE00 from the setup start, minus 0x200.</summary>
    public const ushort HeapEnd = 0xFE00 - 0x200;

    private readonly byte[] _bytes = new byte[Size];

    /// <summary>A zero page whose setup header is copied from the image (0x1F1 up to 0x202 + the byte at 0x201).</summary>
    public static BootParams FromSetupHeader(ReadOnlySpan<byte> image, int headerEnd)
    {
        var zeroPage = new BootParams();
        image[SetupHeaderOffset..headerEnd].CopyTo(zeroPage._bytes.AsSpan(SetupHeaderOffset));
        return zeroPage;
    }

    /// <summary>
    /// A zero page for a kernel without a setup header (vmlinux): just the fields the kernel
    /// checks, as Firecracker writes them.
    /// </summary>
    public static BootParams Synthesized(uint kernelAlignment, uint commandLineSize)
    {
        var zeroPage = new BootParams();
        zeroPage.WriteU16(BootFlagOffset, BootFlag);
        zeroPage.WriteU32(HeaderMagicOffset, HeaderMagic);
        zeroPage.WriteU32(KernelAlignmentOffset, kernelAlignment);
        zeroPage.WriteU8(LoadFlagsOffset, LoadedHigh);
        zeroPage.WriteU32(CmdlineSizeOffset, commandLineSize);
        return zeroPage;
    }

    public ReadOnlySpan<byte> Bytes => _bytes;

    public byte ReadU8(int offset) => _bytes[offset];

    public ushort ReadU16(int offset) => BinaryPrimitives.ReadUInt16LittleEndian(_bytes.AsSpan(offset));

    public uint ReadU32(int offset) => BinaryPrimitives.ReadUInt32LittleEndian(_bytes.AsSpan(offset));

    public ulong ReadU64(int offset) => BinaryPrimitives.ReadUInt64LittleEndian(_bytes.AsSpan(offset));

    public void WriteU8(int offset, byte value) => _bytes[offset] = value;

    public void WriteU16(int offset, ushort value) => BinaryPrimitives.WriteUInt16LittleEndian(_bytes.AsSpan(offset), value);

    public void WriteU32(int offset, uint value) => BinaryPrimitives.WriteUInt32LittleEndian(_bytes.AsSpan(offset), value);

    public void WriteU64(int offset, ulong value) => BinaryPrimitives.WriteUInt64LittleEndian(_bytes.AsSpan(offset), value);

    /// <summary>Fills in what a boot loader owns: loader type, heap, command line, initrd, memory map.</summary>
    public void SetLoaderFields(ulong commandLine, ulong ramdiskImage, ulong ramdiskSize, E820Map map)
    {
        WriteU8(TypeOfLoaderOffset, LoaderTypeUndefined);
        WriteU8(LoadFlagsOffset, (byte)(ReadU8(LoadFlagsOffset) | CanUseHeap));
        WriteU16(HeapEndPtrOffset, HeapEnd);
        WriteU32(CmdLinePtrOffset, (uint)commandLine);
        WriteU32(ExtCmdLinePtrOffset, (uint)(commandLine >> 32));
        WriteU32(RamdiskImageOffset, (uint)ramdiskImage);
        WriteU32(ExtRamdiskImageOffset, (uint)(ramdiskImage >> 32));
        WriteU32(RamdiskSizeOffset, (uint)ramdiskSize);
        WriteU32(ExtRamdiskSizeOffset, (uint)(ramdiskSize >> 32));

        // No setup_data chain: the field must not keep whatever the image carried.
        WriteU64(SetupDataOffset, 0);

        WriteU8(E820EntriesOffset, (byte)map.Entries.Count);
        map.Encode(_bytes.AsSpan(E820TableOffset, E820Map.MaxEntries * E820Entry.EncodedSize));
    }
}
