using SharpVisor.Memory;

namespace SharpVisor.Boot.Tests;

public sealed class MultibootTests : IDisposable
{
    private const ulong Ram = 64UL << 20;
    private readonly TempFiles _files = new();
    private readonly GuestMemory _memory = GuestMemory.CreateRam(Ram);

    public void Dispose()
    {
        _memory.Dispose();
        _files.Dispose();
    }

    [Fact]
    public void FindsTheHeaderAtAnAlignedOffsetWithinEightKiB()
    {
        byte[] image = new byte[0x3000];
        TestImages.MultibootHeader(0x3).CopyTo(image, 0x1FFC - 8); // ends exactly at 8 KiB

        MultibootHeader header = MultibootHeader.Find("k", image)!;

        Assert.Equal(0x1FF4, header.FileOffset);
        Assert.Equal(0x3u, header.Flags);
        Assert.False(header.HasAddressFields);
    }

    [Fact]
    public void IgnoresUnalignedAndLateMagic()
    {
        byte[] unaligned = new byte[0x3000];
        TestImages.MultibootHeader(0x3).CopyTo(unaligned, 0x102);
        byte[] late = new byte[0x3000];
        TestImages.MultibootHeader(0x3).CopyTo(late, 0x2000);
        byte[] straddling = new byte[0x3000];
        TestImages.MultibootHeader(0x3).CopyTo(straddling, 0x1FF8);

        Assert.Null(MultibootHeader.Find("k", unaligned));
        Assert.Null(MultibootHeader.Find("k", late));
        Assert.Null(MultibootHeader.Find("k", straddling));
    }

    [Fact]
    public void BadChecksumIsAClearError()
    {
        byte[] image = new byte[0x1000];
        TestImages.MultibootHeader(0x3, checksumDelta: 1).CopyTo(image, 0x20);
        string kernel = _files.Write("bad-checksum", image);

        BootImageException e = Assert.Throws<BootImageException>(() => KernelImage.Detect(kernel));
        Assert.Equal($"{kernel}: Multiboot header at offset 0x20 has a bad checksum (magic + flags + checksum must be 0)", e.Message);
    }

    [Fact]
    public void AValidHeaderAfterABadOneIsUsed()
    {
        byte[] image = TestImages.AoutKludge();
        TestImages.MultibootHeader(0x3, checksumDelta: 5).CopyTo(image, 0x10);

        MultibootHeader header = MultibootHeader.Find("k", image)!;
        Assert.Equal(0x40, header.FileOffset);
    }

    [Fact]
    public void AoutKludgeLoadsByTheAddressFields()
    {
        byte[] image = TestImages.AoutKludge(fileSize: 0x3000, loadEndAddr: 0x10_2000, bssEndAddr: 0x10_5000);
        _memory.Fill(0x10_0000, 0x6000, 0xCC);
        string kernel = _files.Write("aout", image);

        BootResult result = BootLoader.Load(_memory, new BootRequest(kernel));

        MultibootImage parsed = Assert.IsType<MultibootImage>(KernelImage.Detect(kernel));
        Assert.Null(parsed.Elf);
        Assert.Equal(0, parsed.LoadFileOffset);
        byte[] loaded = new byte[0x2000];
        _memory.Read(0x10_0000, loaded);
        Assert.Equal(image[..0x2000], loaded);
        byte[] bss = new byte[0x3000];
        _memory.Read(0x10_2000, bss);
        Assert.All(bss, b => Assert.Equal(0, b));
        Assert.Equal(0xCC, _memory.Read<byte>(0x10_5000));
        Assert.Equal(0x10_0100UL, result.EntryPoint);
        Assert.Equal(new BootPlacement("kernel", 0x10_0000, 0x5000), result.Find("kernel"));
    }

    [Fact]
    public void AoutKludgeWithLoadEndZeroLoadsTheRestOfTheFile()
    {
        // The header sits 0x40 into the file but header_addr says 0x20 past load_addr: loading starts at file offset 0x20.
        byte[] image = TestImages.Pattern(0x1800, 1);
        TestImages.MultibootHeader(0x1_0000, headerAddr: 0x20_0020, loadAddr: 0x20_0000, entryAddr: 0x20_0400).CopyTo(image, 0x40);
        string kernel = _files.Write("aout", image);

        BootResult result = BootLoader.Load(_memory, new BootRequest(kernel));

        byte[] loaded = new byte[0x1800 - 0x20];
        _memory.Read(0x20_0000, loaded);
        Assert.Equal(image[0x20..], loaded);
        Assert.Equal(0x1800UL - 0x20, result.Find("kernel")!.Value.Size);
    }

    public static TheoryData<string, byte[], string> BadKludges => new()
    {
        { "header_addr below load_addr", Kludge(headerAddr: 0xF_FFF0), "header_addr 0xffff0 is below load_addr 0x100000" },
        { "load_addr before the file", Kludge(headerAddr: 0x10_0100), "would start 192 bytes before the beginning of the file" },
        { "load_end below load", Kludge(loadEndAddr: 0x10_0000), "load_end_addr 0x100000 is not above load_addr" },
        { "load_end past the file", Kludge(loadEndAddr: 0x10_4000), "truncated: Multiboot load_end_addr asks for 16384 bytes from file offset 0x0, but the file has only 12288" },
        { "bss below load end", Kludge(loadEndAddr: 0x10_2000, bssEndAddr: 0x10_1000), "bss_end_addr 0x101000 is below the end of the loaded image 0x102000" },
        { "entry outside", Kludge(entryAddr: 0x20_0000), "entry_addr 0x200000 is outside the loaded image 0x100000-0x103000" },
        { "video mode", Kludge(flags: 0x1_0007), "requires video mode information (flag bit 2)" },
        { "unknown requirement", Kludge(flags: 0x1_0013), "requires features SharpVisor does not know (flags 0x10)" },
        { "no address fields, not ELF", Kludge(flags: 0x3), "has no address fields (flag bit 16) and the file is not ELF" },
    };

    private static byte[] Kludge(uint headerAddr = 0x10_0040, uint loadEndAddr = 0, uint bssEndAddr = 0, uint entryAddr = 0x10_0100, uint flags = 0x1_0003)
    {
        byte[] image = TestImages.Pattern(0x3000, 0x33);
        TestImages.MultibootHeader(flags, headerAddr, 0x10_0000, loadEndAddr, bssEndAddr, entryAddr).CopyTo(image, 0x40);
        return image;
    }

    [Theory]
    [MemberData(nameof(BadKludges))]
    public void BadHeadersGiveOneLineErrors(string what, byte[] image, string expected)
    {
        string kernel = _files.Write("bad-" + what.Replace(' ', '-'), image);

        BootImageException e = Assert.Throws<BootImageException>(() => KernelImage.Detect(kernel));

        Assert.StartsWith(kernel + ": ", e.Message);
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Elf32LoadsSegmentsAndTranslatesAHigherHalfEntry()
    {
        byte[] text = TestImages.Pattern(0x1000, 5);
        TestImages.MultibootHeader(0x3).CopyTo(text, 0);
        byte[] image = TestImages.Elf(32, 0xC010_0010,
        [
            new(0xC010_0000, 0x10_0000, text, 0x1000),
            new(0xC010_1000, 0x10_1000, TestImages.Pattern(0x100, 9), 0x2000),
        ]);
        string kernel = _files.Write("elf32", image);

        MultibootImage parsed = Assert.IsType<MultibootImage>(KernelImage.Detect(kernel));
        BootResult result = parsed.Load(_memory, new BootRequest(kernel));

        Assert.NotNull(parsed.Elf);
        Assert.Equal(0x1000, parsed.Header.FileOffset);
        Assert.Equal(0x10_0010UL, result.EntryPoint);
        byte[] loaded = new byte[0x1000];
        _memory.Read(0x10_0000, loaded);
        Assert.Equal(text, loaded);
        Assert.Equal(0u, TestImages.U32(_memory, 0x10_1100)); // bss
    }

    [Fact]
    public void Elf64WithoutAddressFieldsIsRejected()
    {
        byte[] text = new byte[0x100];
        TestImages.MultibootHeader(0x3).CopyTo(text, 0);
        string kernel = _files.Write("elf64mb", TestImages.Elf(64, 0x10_0000, [new(0x10_0000, 0x10_0000, text, 0x100)]));

        BootImageException e = Assert.Throws<BootImageException>(() => KernelImage.Detect(kernel));
        Assert.Contains("is ELF64: Multiboot v1 loads ELF32 images unless the header sets the a.out kludge address fields", e.Message);
    }

    [Fact]
    public void InfoStructureDescribesMemoryCommandLineModulesAndLoader()
    {
        string kernel = _files.Write("aout", TestImages.AoutKludge(bssEndAddr: 0x10_4800));
        string first = _files.WritePattern("first.bin", 5000, 1);
        string second = _files.WritePattern("second.bin", 3, 2);

        BootResult result = BootLoader.Load(_memory, new BootRequest(kernel)
        {
            CommandLine = "exit=3 hello",
            Modules = [new BootModule(first, "first arg1"), new BootModule(second)],
        });

        ulong info = result.State.Rbx;
        Assert.Equal(BootLayout.MultibootInfoAddress, info);
        uint flags = TestImages.U32(_memory, info);
        Assert.Equal((1u << 0) | (1u << 2) | (1u << 3) | (1u << 6) | (1u << 9), flags);
        Assert.Equal(639u, TestImages.U32(_memory, info + 4));
        Assert.Equal((uint)((Ram - 0x10_0000) >> 10), TestImages.U32(_memory, info + 8));
        Assert.Equal("exit=3 hello", TestImages.ReadCString(_memory, TestImages.U32(_memory, info + 16)));
        Assert.Equal("SharpVisor", TestImages.ReadCString(_memory, TestImages.U32(_memory, info + 64)));

        // Modules: page-aligned, the first right after the kernel's bss.
        Assert.Equal(2u, TestImages.U32(_memory, info + 20));
        ulong mods = TestImages.U32(_memory, info + 24);
        Assert.Equal(0x10_5000u, TestImages.U32(_memory, mods));
        Assert.Equal(0x10_5000u + 5000, TestImages.U32(_memory, mods + 4));
        Assert.Equal("first arg1", TestImages.ReadCString(_memory, TestImages.U32(_memory, mods + 8)));
        Assert.Equal(0x10_7000u, TestImages.U32(_memory, mods + 16));
        Assert.Equal(0x10_7003u, TestImages.U32(_memory, mods + 20));
        Assert.Equal("second.bin", TestImages.ReadCString(_memory, TestImages.U32(_memory, mods + 24)));
        byte[] loaded = new byte[5000];
        _memory.Read(0x10_5000, loaded);
        Assert.Equal(File.ReadAllBytes(first), loaded);

        // mmap: size-prefixed entries matching the e820 map.
        uint length = TestImages.U32(_memory, info + 44);
        ulong at = TestImages.U32(_memory, info + 48);
        var entries = new List<E820Entry>();
        for (ulong end = at + length; at < end;)
        {
            uint size = TestImages.U32(_memory, at);
            entries.Add(new E820Entry(_memory.Read<ulong>(at + 4), _memory.Read<ulong>(at + 12), (E820Type)TestImages.U32(_memory, at + 20)));
            at += size + 4;
        }

        Assert.Equal(result.MemoryMap.Entries, entries);
        Assert.Equal(3, entries.Count);
        Assert.Equal(new E820Entry(0x10_0000, Ram - 0x10_0000, E820Type.Ram), entries[2]);
    }

    [Fact]
    public void ModuleThatDoesNotFitIsAClearError()
    {
        string kernel = _files.Write("aout", TestImages.AoutKludge());
        string big = _files.WriteSparse("big.bin", 64 << 20);

        BootImageException e = Assert.Throws<BootImageException>(() => BootLoader.Load(_memory, new BootRequest(kernel) { Modules = [new BootModule(big)] }));
        Assert.StartsWith(big + ": module 0 at 0x105000-0x4105000 does not fit in guest RAM", e.Message);
    }

    [Fact]
    public void MissingModuleIsAClearError()
    {
        string kernel = _files.Write("aout", TestImages.AoutKludge());
        string missing = Path.Combine(_files.Directory, "nope.bin");

        BootImageException e = Assert.Throws<BootImageException>(() => BootLoader.Load(_memory, new BootRequest(kernel) { Modules = [new BootModule(missing)] }));
        Assert.Equal($"{missing}: module file not found", e.Message);
    }

    [Theory]
    [InlineData(0x8000u)]   // real-mode test kernels: on the boot stack
    [InlineData(0x2_0000u)] // on the command-line area
    [InlineData(0x7000u)]   // on multiboot_info
    public void AKernelOnTheFixedBootStructuresLoadsAndTheStructuresMoveAfterIt(uint loadAddr)
    {
        byte[] image = TestImages.Pattern(0x3000, 0x33);
        TestImages.MultibootHeader(0x1_0003, headerAddr: loadAddr + 0x40, loadAddr: loadAddr, entryAddr: loadAddr + 0x100).CopyTo(image, 0x40);
        string kernel = _files.Write("low", image);
        string module = _files.WritePattern("module.bin", 100, 7);

        BootResult result = BootLoader.Load(_memory, new BootRequest(kernel)
        {
            CommandLine = "realmode",
            Modules = [new BootModule(module)],
        });

        // The image is intact where it asked to be.
        byte[] loaded = new byte[image.Length];
        _memory.Read(loadAddr, loaded);
        Assert.Equal(image, loaded);
        Assert.Equal(loadAddr + 0x100UL, result.State.Rip);

        // The module follows the kernel; the structures follow the module, page-aligned (as QEMU).
        ulong moduleStart = loadAddr + 0x3000UL;
        ulong block = moduleStart + 0x1000;
        ulong info = result.State.Rbx;
        Assert.Equal(block + 0x1000, info);
        Assert.Equal(block, result.State.Gdt.Base);
        Assert.Equal(block + 0x3000, result.State.Rsp);
        Assert.Equal(block + 0x100, result.State.Tr.Base);
        Assert.Equal(BootGdt.Code32Descriptor, _memory.Read<ulong>(block + BootGdt.CodeSelector));
        Assert.Equal("realmode", TestImages.ReadCString(_memory, TestImages.U32(_memory, info + 16)));
        ulong mods = TestImages.U32(_memory, info + 24);
        Assert.Equal((uint)moduleStart, TestImages.U32(_memory, mods));
        Assert.InRange(TestImages.U32(_memory, info + 48), (uint)block, (uint)(block + 0x20000)); // mmap in the block

        // Nothing the loader wrote overlaps anything else it wrote.
        IReadOnlyList<BootPlacement> all = result.Placements;
        for (int i = 0; i < all.Count; i++)
        {
            for (int j = i + 1; j < all.Count; j++)
            {
                Assert.False(all[i].Overlaps(all[j].Address, all[j].Size), $"{all[i]} overlaps {all[j]}");
            }
        }
    }

    [Fact]
    public void AKernelAtOneMiBKeepsTheFixedLayout()
    {
        string kernel = _files.Write("aout", TestImages.AoutKludge());

        BootResult result = BootLoader.Load(_memory, new BootRequest(kernel));

        Assert.Equal(BootLayout.MultibootInfoAddress, result.State.Rbx);
        Assert.Equal(BootLayout.GdtAddress, result.State.Gdt.Base);
        Assert.Equal(BootLayout.BootStackTop, result.State.Rsp);
    }

    [Fact]
    public void InitrdIsRejectedForMultiboot()
    {
        string kernel = _files.Write("aout", TestImages.AoutKludge());
        string initrd = _files.WritePattern("initrd", 100, 1);

        BootImageException e = Assert.Throws<BootImageException>(() => BootLoader.Load(_memory, new BootRequest(kernel) { InitrdPath = initrd }));
        Assert.Contains("an initrd is for Linux kernels", e.Message);
    }
}
