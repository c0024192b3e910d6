using System.Diagnostics;
using System.Runtime.InteropServices;

namespace SharpVisor.Boot;

/// <summary>
/// A bzImage's payload decompressed by the VMM, checked to be what Linux's own decompressor would
/// run (arch/x86/boot/compressed/misc.c, parse_elf): an ELF64 x86-64 vmlinux whose PT_LOAD segments
/// lie at or above LOAD_PHYSICAL_ADDR (the header's pref_address), each copied to the load address
/// plus its p_paddr's distance from it, entered at e_entry's physical address (startup_64, the
/// image's first byte in Linux 6.1, where the decompressor jumps). The decompressed bytes live in
/// native memory, freed by <see cref="Dispose"/> once the segments are copied: a managed array of
/// that size would stay in the VMM's resident set until a full garbage collection.
/// </summary>
internal sealed unsafe class DecompressedKernel : IDisposable
{
    private byte* _vmlinux;
    private readonly int _length;

    private DecompressedKernel(byte* vmlinux, int length, ElfFile elf, string compression, ulong entryOffset, ulong extent, TimeSpan decodeTime)
    {
        _vmlinux = vmlinux;
        _length = length;
        Elf = elf;
        Compression = compression;
        EntryOffset = entryOffset;
        Extent = extent;
        DecodeTime = decodeTime;
    }

    public ReadOnlySpan<byte> Vmlinux
    {
        get
        {
            ObjectDisposedException.ThrowIf(_vmlinux is null, this);
            return new ReadOnlySpan<byte>(_vmlinux, _length);
        }
    }

    public ElfFile Elf { get; }

    /// <summary>"LZ4" or "gzip".</summary>
    public string Compression { get; }

    /// <summary>startup_64's distance from pref_address.</summary>
    public ulong EntryOffset { get; }

    /// <summary>Bytes from pref_address to the end of the highest segment (its bss and brk included).</summary>
    public ulong Extent { get; }

    /// <summary>How long the host took to decompress (near zero when the process had it already).</summary>
    public TimeSpan DecodeTime { get; }

    /// <summary>
    /// The decompressed kernel, or null and <paramref name="whyNot"/> when the VMM cannot stand in
    /// for the guest's decompressor (a compression it does not decode, a payload that is not such
    /// an ELF): the caller then boots the bzImage as it is, as before.
    /// </summary>
    public static DecompressedKernel? TryCreate(BzImage bz, byte[] image, out string whyNot)
    {
        string path = bz.Path;
        byte* vmlinux = null;
        try
        {
            ReadOnlySpan<byte> payload = BzImagePayload.Find(path, image, bz.SetupSize);
            string? compression = BzImagePayload.Identify(payload);
            if (!BzImagePayload.CanDecompress(compression))
            {
                whyNot = compression is null
                    ? "its payload's compression is not one the VMM recognises"
                    : $"its payload is {compression}-compressed and the VMM decodes LZ4 and gzip";
                return null;
            }

            long started = Stopwatch.GetTimestamp();
            int length = BzImagePayload.DecompressedSize(path, payload, out string kind);
            vmlinux = (byte*)NativeMemory.Alloc((nuint)length);
            var bytes = new Span<byte>(vmlinux, length);
            BzImagePayload.DecompressInto(path, payload, bytes);
            TimeSpan decodeTime = Stopwatch.GetElapsedTime(started);
            if (Check(bz, bytes, out whyNot) is not { } elf)
            {
                return null;
            }

            ulong entry = elf.Entry >= LinuxBoot.StartKernelMap ? elf.Entry - LinuxBoot.StartKernelMap : elf.Entry;
            ulong end = elf.LoadSegments.Max(s => s.PhysicalAddress + s.MemorySize);
            var kernel = new DecompressedKernel(vmlinux, length, elf, kind, entry - bz.PrefAddress, end - bz.PrefAddress, decodeTime);
            vmlinux = null;
            return kernel;
        }
        catch (BootImageException e)
        {
            whyNot = e.Problem;
            return null;
        }
        finally
        {
            NativeMemory.Free(vmlinux);
        }
    }

    public void Dispose()
    {
        NativeMemory.Free(_vmlinux);
        _vmlinux = null;
    }

    /// <summary>The vmlinux's ELF when it is one the decompressor would run from pref_address, else null and why not.</summary>
    private static ElfFile? Check(BzImage bz, ReadOnlySpan<byte> vmlinux, out string whyNot)
    {
        ElfFile elf = ElfFile.Parse(bz.Path, vmlinux);
        if (elf.Bits != 64 || !elf.LoadSegments.Any())
        {
            whyNot = "its payload is not a loadable ELF64 vmlinux";
            return null;
        }

        foreach (ElfProgramHeader segment in elf.LoadSegments)
        {
            if (segment.PhysicalAddress < bz.PrefAddress)
            {
                whyNot = $"a segment of its vmlinux lies at 0x{segment.PhysicalAddress:x}, below pref_address 0x{bz.PrefAddress:x}";
                return null;
            }
        }

        ulong entry = elf.Entry >= LinuxBoot.StartKernelMap ? elf.Entry - LinuxBoot.StartKernelMap : elf.Entry;
        if (!ElfLoader.IsInsideSegment(elf, entry))
        {
            whyNot = $"its vmlinux's entry 0x{elf.Entry:x} is not inside a loadable segment";
            return null;
        }

        whyNot = "";
        return elf;
    }
}
