using System.Diagnostics;
using SharpVisor.Memory;

namespace SharpVisor.Boot;

/// <summary>
/// A bzImage's payload decompressed by the VMM the way Linux's own decompressor does it
/// (arch/x86/boot/compressed/misc.c: __decompress, then parse_elf): decoded into guest RAM at the
/// load address, then each PT_LOAD segment moved to the load address plus its p_paddr's distance
/// from LOAD_PHYSICAL_ADDR (the header's pref_address), entered at e_entry's physical address
/// (startup_64, the image's first byte in Linux 6.1, where the decompressor jumps). Decoding in
/// place needs no host buffer: 50 MiB of fresh host memory costs more in page faults than the decode.
/// </summary>
internal sealed class DecompressedKernel
{
    private DecompressedKernel(string compression, int length, ulong entryOffset, ulong extent, TimeSpan decodeTime)
    {
        Compression = compression;
        Length = length;
        EntryOffset = entryOffset;
        Extent = extent;
        DecodeTime = decodeTime;
    }

    /// <summary>"LZ4" or "gzip".</summary>
    public string Compression { get; }

    /// <summary>The decompressed payload's size (the ELF and what follows it).</summary>
    public int Length { get; }

    /// <summary>startup_64's distance from the load address.</summary>
    public ulong EntryOffset { get; }

    /// <summary>Bytes from the load address that decoding and the segments used (their bss included).</summary>
    public ulong Extent { get; }

    /// <summary>How long the host took to decompress and move the segments.</summary>
    public TimeSpan DecodeTime { get; }

    /// <summary>
    /// Decompresses <paramref name="bz"/>'s payload at <paramref name="load"/> and puts its segments
    /// in place; or returns null and <paramref name="whyNot"/> when the VMM cannot stand in for the
    /// guest's decompressor (a compression it does not decode, a payload that is not such an ELF, no
    /// free RAM at the load address). Guest RAM from the load address may then hold decoded bytes:
    /// the caller loads the bzImage there as before.
    /// </summary>
    public static DecompressedKernel? TryLoad(BzImage bz, byte[] image, GuestMemory memory, MemoryPlan plan, ulong load, out string whyNot)
    {
        string path = bz.Path;
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

            int length = BzImagePayload.DecompressedSize(path, payload, out string kind);
            if (!plan.IsFree(load, (ulong)length))
            {
                whyNot = $"its decompressed kernel ({BootPlacement.FormatSize((ulong)length)}) does not fit in guest RAM at 0x{load:x}";
                return null;
            }

            long started = Stopwatch.GetTimestamp();
            Span<byte> decoded = memory.GetSpan(load, length);
            BzImagePayload.DecompressInto(path, payload, decoded);
            if (Check(bz, decoded, load, out whyNot) is not { } elf)
            {
                return null;
            }

            ulong extent = Math.Max((ulong)length, elf.LoadSegments.Max(s => s.PhysicalAddress - bz.PrefAddress + s.MemorySize));
            if (!plan.IsFree(load, extent))
            {
                whyNot = $"its segments reach 0x{load + extent:x}, beyond the RAM free from 0x{load:x}";
                return null;
            }

            foreach (ElfProgramHeader segment in elf.LoadSegments.OrderBy(s => s.Offset))
            {
                decoded.Slice((int)segment.Offset, (int)segment.FileSize).CopyTo(memory.GetSpan(Destination(bz, load, segment), (int)segment.FileSize));
            }

            // After every move: a bss may lie on a later segment's source bytes.
            foreach (ElfProgramHeader segment in elf.LoadSegments)
            {
                ElfLoader.Zero(memory, Destination(bz, load, segment) + segment.FileSize, segment.MemorySize - segment.FileSize);
            }

            memory.NotifyExternalWrite(load, extent);
            ulong entry = elf.Entry >= LinuxBoot.StartKernelMap ? elf.Entry - LinuxBoot.StartKernelMap : elf.Entry;
            return new DecompressedKernel(kind, length, entry - bz.PrefAddress, extent, Stopwatch.GetElapsedTime(started));
        }
        catch (BootImageException e)
        {
            whyNot = e.Problem;
            return null;
        }
        catch (GuestMemoryException e)
        {
            whyNot = $"its decompressed kernel does not fit in one stretch of guest RAM ({e.Message})";
            return null;
        }
    }

    /// <summary>Where parse_elf puts a segment: load + (p_paddr - LOAD_PHYSICAL_ADDR).</summary>
    private static ulong Destination(BzImage bz, ulong load, ElfProgramHeader segment) => load + (segment.PhysicalAddress - bz.PrefAddress);

    /// <summary>
    /// The vmlinux's ELF when the decompressor could run it from pref_address and its segments can
    /// be moved in place in file order (each move lands below every later segment's source, as in
    /// a vmlinux, whose file offsets run ahead of its addresses), else null and why not.
    /// </summary>
    private static ElfFile? Check(BzImage bz, ReadOnlySpan<byte> vmlinux, ulong load, out string whyNot)
    {
        ElfFile elf = ElfFile.Parse(bz.Path, vmlinux);
        if (elf.Bits != 64 || !elf.LoadSegments.Any())
        {
            whyNot = "its payload is not a loadable ELF64 vmlinux";
            return null;
        }

        ElfProgramHeader[] segments = elf.LoadSegments.OrderBy(s => s.Offset).ToArray();
        foreach (ElfProgramHeader segment in segments)
        {
            if (segment.PhysicalAddress < bz.PrefAddress)
            {
                whyNot = $"a segment of its vmlinux lies at 0x{segment.PhysicalAddress:x}, below pref_address 0x{bz.PrefAddress:x}";
                return null;
            }

            if (segment.PhysicalAddress - bz.PrefAddress > int.MaxValue || segment.MemorySize > int.MaxValue)
            {
                whyNot = $"a segment of its vmlinux at 0x{segment.PhysicalAddress:x} (+0x{segment.MemorySize:x}) is out of reach";
                return null;
            }
        }

        for (int i = 0; i < segments.Length; i++)
        {
            ulong end = Destination(bz, load, segments[i]) - load + segments[i].FileSize;
            if (segments.Skip(i + 1).Any(later => later.FileSize > 0 && later.Offset < end))
            {
                whyNot = $"its vmlinux's segment at file offset 0x{segments[i].Offset:x} would overwrite a later one's bytes when moved in place";
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
