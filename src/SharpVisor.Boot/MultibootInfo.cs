using System.Buffers.Binary;
using System.Text;
using SharpVisor.Memory;

namespace SharpVisor.Boot;

/// <summary>
/// The multiboot_info structure (Multiboot Specification 0.6.96, section 3.3) and the data it
/// points at, at the addresses a <see cref="MultibootPlacement"/> gives: the structure, the
/// Multiboot data area (mmap entries, module list, strings) and the command-line area.
/// </summary>
public static class MultibootInfo
{
    public const int Size = 88;

    public const int FlagsOffset = 0;
    public const int MemLowerOffset = 4;
    public const int MemUpperOffset = 8;
    public const int BootDeviceOffset = 12;
    public const int CmdlineOffset = 16;
    public const int ModsCountOffset = 20;
    public const int ModsAddrOffset = 24;
    public const int MmapLengthOffset = 44;
    public const int MmapAddrOffset = 48;
    public const int BootLoaderNameOffset = 64;

    public const uint FlagMemory = 1u << 0;
    public const uint FlagCommandLine = 1u << 2;
    public const uint FlagModules = 1u << 3;
    public const uint FlagMemoryMap = 1u << 6;
    public const uint FlagBootLoaderName = 1u << 9;

    /// <summary>struct multiboot_mod_list: mod_start, mod_end (exclusive), string, reserved.</summary>
    public const int ModuleEntrySize = 16;

    /// <summary>An mmap entry: a u32 size (20, not counting itself), then base_addr u64, length u64, type u32.</summary>
    public const int MemoryMapEntrySize = 24;

    public const string BootLoaderName = "SharpVisor";

    /// <summary>Conventional memory reported as mem_lower never exceeds 640 KiB.</summary>
    private const ulong ConventionalMemoryEnd = 0xA0000;

    internal static void Write(GuestMemory memory, string kernelFile, E820Map map, IReadOnlyList<MultibootModule> modules, MultibootPlacement placement)
    {
        var data = new DataArea(kernelFile, placement.DataAddress);

        uint mmapAddress = data.Address;
        foreach (E820Entry entry in map.Entries)
        {
            Span<byte> slot = data.Allocate(MemoryMapEntrySize);
            BinaryPrimitives.WriteUInt32LittleEndian(slot, MemoryMapEntrySize - 4);
            BinaryPrimitives.WriteUInt64LittleEndian(slot[4..], entry.Address);
            BinaryPrimitives.WriteUInt64LittleEndian(slot[12..], entry.Size);
            BinaryPrimitives.WriteUInt32LittleEndian(slot[20..], (uint)entry.Type);
        }

        uint mmapLength = data.Address - mmapAddress;
        uint loaderName = data.AddString(BootLoaderName);

        uint modsAddress = data.Address;
        Span<byte> list = data.Allocate(modules.Count * ModuleEntrySize);
        for (int i = 0; i < modules.Count; i++)
        {
            uint text = data.AddString(modules[i].Text);
            Span<byte> entry = list.Slice(i * ModuleEntrySize, ModuleEntrySize);
            BinaryPrimitives.WriteUInt32LittleEndian(entry, (uint)modules[i].Start);
            BinaryPrimitives.WriteUInt32LittleEndian(entry[4..], (uint)modules[i].End);
            BinaryPrimitives.WriteUInt32LittleEndian(entry[8..], text);
        }

        var info = new byte[BootLayout.BootInfoSize];
        BinaryPrimitives.WriteUInt32LittleEndian(info.AsSpan(FlagsOffset), FlagMemory | FlagCommandLine | FlagModules | FlagMemoryMap | FlagBootLoaderName);
        BinaryPrimitives.WriteUInt32LittleEndian(info.AsSpan(MemLowerOffset), MemLowerKiB(map));
        BinaryPrimitives.WriteUInt32LittleEndian(info.AsSpan(MemUpperOffset), MemUpperKiB(map));
        BinaryPrimitives.WriteUInt32LittleEndian(info.AsSpan(CmdlineOffset), (uint)placement.CommandLineAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(info.AsSpan(ModsCountOffset), (uint)modules.Count);
        BinaryPrimitives.WriteUInt32LittleEndian(info.AsSpan(ModsAddrOffset), modsAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(info.AsSpan(MmapLengthOffset), mmapLength);
        BinaryPrimitives.WriteUInt32LittleEndian(info.AsSpan(MmapAddrOffset), mmapAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(info.AsSpan(BootLoaderNameOffset), loaderName);

        memory.Write(placement.DataAddress, data.Bytes);
        memory.Write(placement.InfoAddress, info);
    }

    /// <summary>KiB of RAM from address 0 (at most 640).</summary>
    public static uint MemLowerKiB(E820Map map) =>
        map.FindRam(0) is { } low ? (uint)(Math.Min(low.End, ConventionalMemoryEnd) >> 10) : 0;

    /// <summary>KiB of RAM from 1 MiB up to the first hole.</summary>
    public static uint MemUpperKiB(E820Map map) =>
        map.FindRam(E820Map.BiosAreaEnd) is { } high ? (uint)Math.Min((high.End - E820Map.BiosAreaEnd) >> 10, uint.MaxValue) : 0;

    /// <summary>A bump allocator over the Multiboot data area.</summary>
    private sealed class DataArea
    {
        private readonly string _kernelFile;
        private readonly ulong _base;
        private int _used;

        public DataArea(string kernelFile, ulong baseAddress)
        {
            _kernelFile = kernelFile;
            _base = baseAddress;
        }

        public byte[] Bytes { get; } = new byte[BootLayout.MultibootDataSize];

        public uint Address => (uint)_base + (uint)_used;

        public Span<byte> Allocate(int size)
        {
            if (size > Bytes.Length - _used)
            {
                throw new BootImageException(_kernelFile, $"the Multiboot memory map, module list and module strings need more than {BootLayout.MultibootDataSize >> 10} KiB; use fewer modules or shorter module strings");
            }

            Span<byte> slot = Bytes.AsSpan(_used, size);
            _used += (size + 3) & ~3;
            _used = Math.Min(_used, Bytes.Length);
            return slot;
        }

        public uint AddString(string text)
        {
            uint address = Address;
            byte[] bytes = Encoding.UTF8.GetBytes(text);
            Span<byte> slot = Allocate(bytes.Length + 1);
            bytes.CopyTo(slot);
            slot[^1] = 0;
            return address;
        }
    }
}
