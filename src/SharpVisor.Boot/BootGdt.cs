using SharpVisor.Machine;
using SharpVisor.Memory;

namespace SharpVisor.Boot;

/// <summary>
/// The GDT the VMM loads before entering a kernel. Selectors follow Linux's boot GDT
/// (__BOOT_CS = 0x10, __BOOT_DS = 0x18), which Linux's 64-bit protocol requires and which
/// serves Multiboot kernels as well; 0x20 is a busy TSS so TR is valid for VM entry.
/// The segment registers in the entry state are decoded from these same descriptors.
/// </summary>
public static class BootGdt
{
    public const ushort CodeSelector = 0x10;
    public const ushort DataSelector = 0x18;
    public const ushort TssSelector = 0x20;

    /// <summary>Flat 64-bit code: base 0, limit 0xFFFFF pages, P, S, type 0xB (exec/read, accessed), L, G.</summary>
    public const ulong Code64Descriptor = 0x00AF_9B00_0000_FFFF;

    /// <summary>Flat 32-bit code: as <see cref="Code64Descriptor"/> with D instead of L.</summary>
    public const ulong Code32Descriptor = 0x00CF_9B00_0000_FFFF;

    /// <summary>Flat data: base 0, limit 4 GiB, P, S, type 0x3 (read/write, accessed), D/B, G.</summary>
    public const ulong DataDescriptor = 0x00CF_9300_0000_FFFF;

    /// <summary>System descriptor type of a busy 32/64-bit TSS.</summary>
    public const byte BusyTssType = 0xB;

    /// <summary>Writes the long-mode GDT: 64-bit code at 0x10, data at 0x18, a 16-byte TSS descriptor at 0x20.</summary>
    public static void WriteLongMode(GuestMemory memory) => Write(memory, Code64Descriptor);

    /// <summary>Writes the protected-mode GDT: 32-bit code at 0x10, data at 0x18, an 8-byte TSS descriptor at 0x20.</summary>
    public static void WriteProtectedMode(GuestMemory memory) => Write(memory, Code32Descriptor);

    /// <summary>The protected-mode GDT at <paramref name="gdtAddress"/>, its TSS at <paramref name="tssAddress"/> (a relocated Multiboot layout).</summary>
    public static void WriteProtectedMode(GuestMemory memory, ulong gdtAddress, ulong tssAddress) =>
        Write(memory, Code32Descriptor, gdtAddress, tssAddress);

    /// <summary>The low 8 bytes of the TSS descriptor; in long mode the next 8 hold base bits 63:32 (zero here).</summary>
    public static ulong TssDescriptor => TssDescriptorAt(BootLayout.TssAddress);

    /// <summary>The TSS descriptor for a TSS at <paramref name="tssAddress"/> (below 4 GiB).</summary>
    public static ulong TssDescriptorAt(ulong tssAddress) => EncodeSystem(tssAddress, BootLayout.TssLimit, BusyTssType);

    /// <summary>The hidden-cache view of a code or data descriptor loaded through <paramref name="selector"/>.</summary>
    public static SegmentRegister ToSegment(ushort selector, ulong descriptor) => SegmentRegister.FromDescriptor(selector, descriptor);

    private static void Write(GuestMemory memory, ulong codeDescriptor) =>
        Write(memory, codeDescriptor, BootLayout.GdtAddress, BootLayout.TssAddress);

    private static void Write(GuestMemory memory, ulong codeDescriptor, ulong gdtAddress, ulong tssAddress)
    {
        Span<ulong> gdt = stackalloc ulong[BootLayout.GdtSize / 8];
        gdt.Clear();
        gdt[CodeSelector / 8] = codeDescriptor;
        gdt[DataSelector / 8] = DataDescriptor;
        gdt[TssSelector / 8] = TssDescriptorAt(tssAddress);
        memory.Write(gdtAddress, System.Runtime.InteropServices.MemoryMarshal.AsBytes(gdt));

        // The slot after the TSS descriptor stays zero: in long mode it is the descriptor's upper
        // half (base 63:32), a 32-bit CPU never looks at it.
        memory.Fill(tssAddress, BootLayout.TssSize, 0);
    }

    /// <summary>A present, DPL 0, byte-granular system descriptor (S = 0).</summary>
    private static ulong EncodeSystem(ulong baseAddress, uint limit, byte type)
    {
        ulong access = type | 0x80UL;
        return (limit & 0xFFFF)
            | ((baseAddress & 0xFF_FFFF) << 16)
            | (access << 40)
            | ((ulong)((limit >> 16) & 0xF) << 48)
            | (((baseAddress >> 24) & 0xFF) << 56);
    }
}
