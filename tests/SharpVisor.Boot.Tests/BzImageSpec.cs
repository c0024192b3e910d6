using System.Buffers.Binary;

namespace SharpVisor.Boot.Tests;

/// <summary>
/// A synthetic bzImage: a setup area with a setup header, then a protected-mode "kernel"
/// filled with a pattern. Defaults describe a modern relocatable 64-bit kernel.
/// </summary>
public sealed record BzImageSpec
{
    public byte SetupSects { get; init; } = 4;
    public uint SysSize { get; init; } = 0x100;
    public ushort Protocol { get; init; } = 0x020F;
    public byte LoadFlags { get; init; } = 0x01;
    public ushort XLoadFlags { get; init; } = 0x0003;
    public bool Relocatable { get; init; } = true;
    public uint KernelAlignment { get; init; } = 0x20_0000;
    public ulong PrefAddress { get; init; } = 0x100_0000;
    public uint InitSize { get; init; } = 0x40_0000;
    public uint CmdlineSize { get; init; } = 0x7FF;
    public uint InitrdAddrMax { get; init; } = 0x7FFF_FFFF;
    public ushort BootFlag { get; init; } = 0xAA55;
    public string Magic { get; init; } = "HdrS";

    /// <summary>Setup header length byte at 0x201: the header ends at 0x202 + this (0x26C, like Linux 6.1).</summary>
    public byte HeaderLength { get; init; } = 0x6A;

    /// <summary>
    /// A compressed kernel written at <see cref="PayloadOffset"/> in the protected-mode code, with
    /// payload_offset and payload_length pointing at it (syssize grows to hold it); null: none.
    /// </summary>
    public byte[]? Payload { get; init; }

    public const int PayloadOffset = 0x100;

    /// <summary>Cut the file to this many bytes (null: setup + syssize * 16).</summary>
    public int? Length { get; init; }

    public int SetupSize => ((SetupSects == 0 ? 4 : SetupSects) + 1) * 512;

    /// <summary>syssize as written: <see cref="SysSize"/>, or more to hold the payload.</summary>
    public uint EffectiveSysSize => Payload is null ? SysSize : Math.Max(SysSize, (uint)(PayloadOffset + Payload.Length + 15) / 16);

    public byte[] Build()
    {
        int full = SetupSize + (int)EffectiveSysSize * 16;
        byte[] image = new byte[Math.Max(Math.Max(full, Length ?? 0), 0x300)];
        TestImages.Pattern(full - SetupSize, 0x5A).CopyTo(image.AsSpan(SetupSize));
        image[0x1F1] = SetupSects;
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(0x1F4), EffectiveSysSize);
        BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(0x1FA), 0xFFFF); // vid_mode: normal
        BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(0x1FE), BootFlag);
        image[0x200] = 0xEB;
        image[0x201] = HeaderLength;
        System.Text.Encoding.ASCII.GetBytes(Magic).CopyTo(image, 0x202);
        BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(0x206), Protocol);
        image[0x211] = LoadFlags;
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(0x214), 0x10_0000); // code32_start
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(0x22C), InitrdAddrMax);
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(0x230), KernelAlignment);
        image[0x234] = Relocatable ? (byte)1 : (byte)0;
        image[0x235] = 21;
        BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(0x236), XLoadFlags);
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(0x238), CmdlineSize);
        BinaryPrimitives.WriteUInt64LittleEndian(image.AsSpan(0x250), 0xDEAD_BEEF); // stale setup_data the loader must clear
        BinaryPrimitives.WriteUInt64LittleEndian(image.AsSpan(0x258), PrefAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(0x260), InitSize);

        if (Payload is { } payload)
        {
            payload.CopyTo(image, SetupSize + PayloadOffset);
            BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(0x248), PayloadOffset);
            BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(0x24C), (uint)payload.Length);
        }

        // Bytes right after the header (0x26C..0x280) must not reach boot_params.
        image.AsSpan(0x26C, 0x14).Fill(0xEE);

        return Length is int length ? image[..length] : image[..full];
    }
}
