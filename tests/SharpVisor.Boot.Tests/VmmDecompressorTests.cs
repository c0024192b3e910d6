using System.IO.Compression;
using SharpVisor.Memory;

namespace SharpVisor.Boot.Tests;

/// <summary>
/// A bzImage booted with the VMM as its decompressor: the payload's ELF segments where the guest's
/// decompressor puts them, startup_64 as the entry, the bzImage's own setup header in boot_params
/// (KASLR_FLAG clear), and the guest's decompressor whenever the VMM cannot stand in for it.
/// </summary>
public sealed class VmmDecompressorTests : IDisposable
{
    private const ulong KernelMap = 0xFFFF_FFFF_8000_0000;
    private const ulong Ram = 128UL << 20;
    private const ulong ZeroPage = BootLayout.ZeroPageAddress;
    private readonly TempFiles _files = new();

    public void Dispose() => _files.Dispose();

    private static byte[] Text => TestImages.Pattern(0x3456, 0x21);

    private static byte[] Data => TestImages.Pattern(0x900, 0x63);

    /// <summary>A vmlinux-like ELF64 linked for <paramref name="physical"/>: text there, data and a bss tail 2 MiB up, entry startup_64 at the text's first byte.</summary>
    private static byte[] Vmlinux(ulong physical = 0x100_0000, ulong? dataPhysical = null) => TestImages.Elf(64, KernelMap + physical,
    [
        new(KernelMap + physical, physical, Text, 0x3456),
        new(KernelMap + (dataPhysical ?? physical + 0x20_0000), dataPhysical ?? physical + 0x20_0000, Data, 0x5000),
    ]);

    /// <summary>The spec's defaults with an LZ4 payload and the KASLR flag set in the file, as a build never ships but a loader must clear.</summary>
    private static BzImageSpec Spec(byte[] payload) => new() { Payload = payload, LoadFlags = BootParams.LoadedHigh | BootParams.KaslrFlag };

    private BootResult Boot(GuestMemory memory, BzImageSpec spec, KernelDecompressor decompressor = KernelDecompressor.Vmm) =>
        BootLoader.Load(memory, new BootRequest(_files.Write("bzImage", spec.Build()))
        {
            CommandLine = "console=ttyS0",
            KernelDecompressor = decompressor,
            AcpiRsdpAddress = 0xE_0000,
            InitrdPath = _files.WritePattern("initrd", 0x3000, 9),
        });

    [Fact]
    public void LoadsTheSegmentsAndEntersStartup64()
    {
        using GuestMemory memory = GuestMemory.CreateRam(Ram);
        memory.Fill(0x120_0000, 0x6000, 0xCC);

        BootResult result = Boot(memory, Spec(Lz4TestEncoder.LegacyFrame(Vmlinux())));

        Assert.Equal(KernelDecompressor.Vmm, result.Decompressor);
        Assert.Equal(0x100_0000UL, result.EntryPoint);
        Assert.True(result.State.Cs.Long);
        Assert.Equal(ZeroPage, result.State.Rsi);
        Assert.Equal(Text, Read(memory, 0x100_0000, Text.Length));
        byte[] data = Read(memory, 0x120_0000, 0x5000);
        Assert.Equal(Data, data[..Data.Length]);
        Assert.All(data[Data.Length..], b => Assert.Equal(0, b));
        Assert.Equal(0xCC, memory.Read<byte>(0x120_5000));
        Assert.Contains("LZ4 payload decompressed by the VMM", result.KernelDescription);
        Assert.Empty(result.Notes);
    }

    [Fact]
    public void BootParamsCarryTheBzImagesSetupHeaderWithoutTheKaslrFlag()
    {
        BzImageSpec spec = Spec(Lz4TestEncoder.LegacyFrame(Vmlinux())) with { Protocol = 0x020F, CmdlineSize = 0x1234, InitrdAddrMax = 0x3FFF_FFFF, KernelAlignment = 0x40_0000 };
        using GuestMemory memory = GuestMemory.CreateRam(Ram);

        Boot(memory, spec);

        Assert.Equal(0x020F, memory.Read<ushort>(ZeroPage + BootParams.VersionOffset));
        Assert.Equal(0x1234u, memory.Read<uint>(ZeroPage + BootParams.CmdlineSizeOffset));
        Assert.Equal(0x3FFF_FFFFu, memory.Read<uint>(ZeroPage + BootParams.InitrdAddrMaxOffset));
        Assert.Equal(0x40_0000u, memory.Read<uint>(ZeroPage + BootParams.KernelAlignmentOffset));
        Assert.Equal(spec.XLoadFlags, memory.Read<ushort>(ZeroPage + BootParams.XLoadFlagsOffset));
        Assert.Equal(spec.InitSize, memory.Read<uint>(ZeroPage + BootParams.InitSizeOffset));
        Assert.Equal(spec.PrefAddress, memory.Read<ulong>(ZeroPage + BootParams.PrefAddressOffset));
        Assert.Equal(spec.EffectiveSysSize, memory.Read<uint>(ZeroPage + BootParams.SysSizeOffset));
        Assert.Equal(BootParams.HeaderMagic, memory.Read<uint>(ZeroPage + BootParams.HeaderMagicOffset));

        // LOADED_HIGH and the loader's CAN_USE_HEAP; no KASLR_FLAG: the kernel was not randomized.
        Assert.Equal(BootParams.LoadedHigh | BootParams.CanUseHeap, memory.Read<byte>(ZeroPage + BootParams.LoadFlagsOffset));

        // What the decompressor's RSDP scan would have found.
        Assert.Equal(0xE_0000UL, memory.Read<ulong>(ZeroPage + BootParams.AcpiRsdpAddrOffset));
        Assert.Equal("console=ttyS0", TestImages.ReadCString(memory, memory.Read<uint>(ZeroPage + BootParams.CmdLinePtrOffset)));
    }

    [Fact]
    public void GzipPayloadsAreDecompressedToo()
    {
        using GuestMemory memory = GuestMemory.CreateRam(Ram);
        BootResult result = Boot(memory, Spec(Gzip(Vmlinux())));

        Assert.Equal(KernelDecompressor.Vmm, result.Decompressor);
        Assert.Equal(0x100_0000UL, result.EntryPoint);
        Assert.Equal(Text, Read(memory, 0x100_0000, Text.Length));
        Assert.Contains("gzip payload decompressed by the VMM", result.KernelDescription);
    }

    [Fact]
    public void TheKernelSpanCoversInitSizeOrTheElfExtentWhicheverIsLarger()
    {
        using GuestMemory small = GuestMemory.CreateRam(Ram);
        BootResult byInitSize = Boot(small, Spec(Lz4TestEncoder.LegacyFrame(Vmlinux())) with { InitSize = 0x40_0000 });
        Assert.Equal(new BootPlacement("kernel", 0x100_0000, 0x40_0000), byInitSize.Find("kernel"));

        // init_size smaller than the segments reach (0x20_0000 + 0x5000): the ELF's extent wins, and the initrd stays clear of it.
        using GuestMemory large = GuestMemory.CreateRam(Ram);
        BootResult byExtent = Boot(large, Spec(Lz4TestEncoder.LegacyFrame(Vmlinux())) with { InitSize = 0x10_0000 });
        Assert.Equal(new BootPlacement("kernel", 0x100_0000, 0x20_5000), byExtent.Find("kernel"));
        Assert.False(byExtent.Find("initrd")!.Value.Overlaps(0x100_0000, 0x20_5000));
    }

    [Fact]
    public void AKernelLoadedBelowPrefAddressKeepsItsSegmentsDistances()
    {
        // pref_address not a multiple of kernel_alignment: the loader picks 2 MiB, and each segment
        // goes where parse_elf would put it, load + (p_paddr - LOAD_PHYSICAL_ADDR).
        BzImageSpec spec = Spec(Lz4TestEncoder.LegacyFrame(Vmlinux(physical: 0x110_0000))) with { PrefAddress = 0x110_0000 };
        using GuestMemory memory = GuestMemory.CreateRam(Ram);

        BootResult result = Boot(memory, spec);

        Assert.Equal(KernelDecompressor.Vmm, result.Decompressor);
        Assert.Equal(0x20_0000UL, result.EntryPoint);
        Assert.Equal(Text, Read(memory, 0x20_0000, Text.Length));
        Assert.Equal(Data, Read(memory, 0x40_0000, Data.Length));
    }

    [Fact]
    public void TheGuestDecompressorWhenAskedFor()
    {
        BzImageSpec spec = Spec(Lz4TestEncoder.LegacyFrame(Vmlinux()));
        byte[] image = spec.Build();
        using GuestMemory memory = GuestMemory.CreateRam(Ram);

        BootResult result = Boot(memory, spec, KernelDecompressor.Guest);

        AssertGuestDecompressorBoot(memory, spec, image, result);
        Assert.Empty(result.Notes);
    }

    public static TheoryData<string, byte[], string> PayloadsTheVmmLeavesToTheGuest => new()
    {
        { "xz", [0xFD, (byte)'7', (byte)'z', (byte)'X', (byte)'Z', 0, 0, 4, 0xE6, 0xD6, 0xB4, 0x46], "its payload is xz-compressed and the VMM decodes LZ4 and gzip" },
        { "zstd", [0x28, 0xB5, 0x2F, 0xFD, 0, 0x58, 0, 0, 0, 0, 0, 0], "its payload is zstd-compressed" },
        { "unknown", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], "compression is not one the VMM recognises" },
        { "corrupt LZ4", [0x02, 0x21, 0x4C, 0x18, 2, 0, 0, 0, 0x10, (byte)'x', 9, 0, 0, 0], "LZ4 payload expanded to 1 bytes" },
        { "gzip with a wrong size", Gzip(Vmlinux(), sizeDelta: 1), "gzip payload" },
        { "not an ELF", Lz4TestEncoder.LegacyFrame(TestImages.Pattern(0x2000, 5)), "not an ELF file" },
        { "segments that cannot move in place", Lz4TestEncoder.LegacyFrame(Vmlinux(physical: 0x100_2000)), "would overwrite a later one's bytes when moved in place" },
        { "segment beyond RAM", Lz4TestEncoder.LegacyFrame(Vmlinux(dataPhysical: 0x7000_0000)), "beyond the RAM free from 0x1000000" },
        { "segment below pref_address", Lz4TestEncoder.LegacyFrame(Vmlinux(physical: 0x100_0000, dataPhysical: 0x80_0000)), "below pref_address 0x1000000" },
    };

    [Theory]
    [MemberData(nameof(PayloadsTheVmmLeavesToTheGuest))]
    public void PayloadsTheVmmCannotTakeBootThroughTheGuestDecompressor(string what, byte[] payload, string reason)
    {
        BzImageSpec spec = Spec(payload);
        byte[] image = spec.Build();
        using GuestMemory memory = GuestMemory.CreateRam(Ram);

        BootResult result = Boot(memory, spec);

        AssertGuestDecompressorBoot(memory, spec, image, result);
        string note = Assert.Single(result.Notes);
        Assert.StartsWith("kernel decompressor: the guest's, because ", note, StringComparison.Ordinal);
        Assert.True(note.Contains(reason, StringComparison.Ordinal), $"{what}: {note}");
        Assert.Contains(note, result.Describe());
    }

    [Fact]
    public void ABzImageWithoutAPayloadBootsAsBefore()
    {
        var spec = new BzImageSpec();
        byte[] image = spec.Build();
        using GuestMemory memory = GuestMemory.CreateRam(Ram);

        BootResult result = Boot(memory, spec);

        AssertGuestDecompressorBoot(memory, spec, image, result);
        Assert.Contains("outside the file", Assert.Single(result.Notes));
    }

    [Fact]
    public void Lz4DecoderRoundTripsRepeatsAtEveryDistanceAndOverlap()
    {
        // Random bytes, runs of one byte, short periodic patterns (offset below the match length)
        // and copies of earlier stretches, each long and short, so every copy path of the decoder runs.
        var random = new Random(1234);
        var data = new List<byte>();
        while (data.Count < 400_000)
        {
            switch (random.Next(4))
            {
                case 0:
                    data.AddRange(Enumerable.Range(0, random.Next(1, 300)).Select(_ => (byte)random.Next(256)));
                    break;
                case 1:
                    data.AddRange(Enumerable.Repeat((byte)random.Next(3), random.Next(4, 5000)));
                    break;
                case 2:
                    byte[] pattern = Enumerable.Range(0, random.Next(2, 24)).Select(_ => (byte)random.Next(256)).ToArray();
                    for (int n = random.Next(4, 400); n > 0; n--)
                    {
                        data.Add(pattern[n % pattern.Length]);
                    }

                    break;
                default:
                    if (data.Count > 0)
                    {
                        int start = random.Next(Math.Max(0, data.Count - 70_000), data.Count);
                        int length = Math.Min(random.Next(4, 3000), data.Count - start);
                        data.AddRange(data.GetRange(start, length));
                    }

                    break;
            }
        }

        byte[] original = data.ToArray();
        Assert.Equal(original, Lz4LegacyFrame.Decode("t", Lz4TestEncoder.LegacyFrame(original)));
    }

    /// <summary>A gzip file, its ISIZE trailer off by <paramref name="sizeDelta"/> when asked.</summary>
    private static byte[] Gzip(byte[] data, int sizeDelta = 0)
    {
        var compressed = new MemoryStream();
        using (var gzip = new GZipStream(compressed, CompressionLevel.Fastest, leaveOpen: true))
        {
            gzip.Write(data);
        }

        byte[] bytes = compressed.ToArray();
        BitConverter.GetBytes(data.Length + sizeDelta).CopyTo(bytes, bytes.Length - 4);
        return bytes;
    }

    private static void AssertGuestDecompressorBoot(GuestMemory memory, BzImageSpec spec, byte[] image, BootResult result)
    {
        Assert.Equal(KernelDecompressor.Guest, result.Decompressor);
        Assert.Equal(0x100_0200UL, result.EntryPoint);
        Assert.Equal(image[spec.SetupSize..], Read(memory, 0x100_0000, image.Length - spec.SetupSize));

        // The header as the file has it: the guest's decompressor owns KASLR_FLAG and the RSDP scan.
        Assert.Equal(spec.LoadFlags | BootParams.CanUseHeap, memory.Read<byte>(ZeroPage + BootParams.LoadFlagsOffset));
        Assert.Equal(0UL, memory.Read<ulong>(ZeroPage + BootParams.AcpiRsdpAddrOffset));
    }

    private static byte[] Read(GuestMemory memory, ulong address, int length)
    {
        byte[] bytes = new byte[length];
        memory.Read(address, bytes);
        return bytes;
    }
}
