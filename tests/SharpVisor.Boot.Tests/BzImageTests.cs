using SharpVisor.Memory;

namespace SharpVisor.Boot.Tests;

public sealed class BzImageTests : IDisposable
{
    private const ulong Ram = 64UL << 20;
    private readonly TempFiles _files = new();

    public void Dispose() => _files.Dispose();

    [Fact]
    public void ParsesTheSetupHeader()
    {
        var spec = new BzImageSpec { SetupSects = 0 }; // 0 means 4
        BzImage image = BzImage.Parse("k", spec.Build());

        Assert.Equal(0x020F, image.Protocol);
        Assert.Equal(4, image.SetupSectors);
        Assert.Equal(5 * 512, image.SetupSize);
        Assert.Equal(0x1000UL, image.ProtectedModeSize);
        Assert.Equal(0x26C, image.SetupHeaderEnd);
        Assert.True(image.Relocatable);
        Assert.Equal(0x20_0000u, image.KernelAlignment);
        Assert.Equal(0x100_0000UL, image.PrefAddress);
        Assert.Equal(0x40_0000u, image.InitSize);
        Assert.Equal(0x7FFu, image.CommandLineSize);
        Assert.Equal(0x7FFF_FFFFu, image.InitrdAddressMax);
        Assert.Equal(KernelFormat.BzImage, image.Format);
    }

    [Fact]
    public void LoadsTheProtectedModeKernelAtPrefAddress()
    {
        var spec = new BzImageSpec();
        byte[] bytes = spec.Build();
        string kernel = _files.Write("bzImage", bytes);
        using GuestMemory memory = GuestMemory.CreateRam(Ram);

        BootResult result = BootLoader.Load(memory, new BootRequest(kernel) { CommandLine = "console=ttyS0" });

        byte[] loaded = new byte[bytes.Length - spec.SetupSize];
        memory.Read(0x100_0000, loaded);
        Assert.Equal(bytes[spec.SetupSize..], loaded);
        Assert.Equal(0x100_0200UL, result.EntryPoint);
        Assert.Equal(new BootPlacement("kernel", 0x100_0000, 0x40_0000), result.Find("kernel"));
        Assert.Equal(KernelFormat.BzImage, result.Format);
        Assert.Contains("bzImage, boot protocol 2.15", result.Describe());
    }

    [Fact]
    public void RelocatableKernelWithUnusablePrefAddressGoesToTheFirstAlignedAddressAboveOneMiB()
    {
        var spec = new BzImageSpec { PrefAddress = 0x9_0000 };
        string kernel = _files.Write("bzImage", spec.Build());
        using GuestMemory memory = GuestMemory.CreateRam(Ram);

        BootResult result = BootLoader.Load(memory, new BootRequest(kernel));

        Assert.Equal(0x20_0000UL, result.Find("kernel")!.Value.Address);
        Assert.Equal(0x20_0200UL, result.EntryPoint);
    }

    [Fact]
    public void WritesBootParamsFields()
    {
        var spec = new BzImageSpec();
        byte[] bytes = spec.Build();
        string kernel = _files.Write("bzImage", bytes);
        string initrd = _files.WritePattern("initrd", 100_000, 7);
        using GuestMemory memory = GuestMemory.CreateRam(Ram);

        BootResult result = BootLoader.Load(memory, new BootRequest(kernel) { CommandLine = "console=ttyS0 quiet", InitrdPath = initrd });

        const ulong zp = 0x7000;
        Assert.Equal(zp, BootLayout.ZeroPageAddress);
        Assert.Equal(zp, result.State.Rsi);

        // Setup header copied from 0x1F1 up to 0x202 + byte[0x201] = 0x26C, nothing after it.
        Assert.Equal(0xAA55, memory.Read<ushort>(zp + 0x1FE));
        Assert.Equal(0x5372_6448u, memory.Read<uint>(zp + 0x202));
        Assert.Equal(0x020F, memory.Read<ushort>(zp + 0x206));
        Assert.Equal(0x40_0000u, memory.Read<uint>(zp + 0x260));
        Assert.Equal(0x100_0000UL, memory.Read<ulong>(zp + 0x258));
        Assert.Equal(0x20_0000u, memory.Read<uint>(zp + 0x230));
        Assert.Equal(0, memory.Read<byte>(zp + 0x26C));
        Assert.Equal(0, memory.Read<byte>(zp + 0x27F));
        Assert.Equal(0, memory.Read<byte>(zp + 0x1EF)); // sentinel
        Assert.Equal(0, memory.Read<byte>(zp + 0x1F0));

        // Loader fields.
        Assert.Equal(0xFF, memory.Read<byte>(zp + 0x210)); // type_of_loader
        Assert.Equal(0x81, memory.Read<byte>(zp + 0x211)); // LOADED_HIGH | CAN_USE_HEAP
        Assert.Equal(0xFE00 - 0x200, memory.Read<ushort>(zp + 0x224)); // heap_end_ptr
        Assert.Equal(0x20000u, memory.Read<uint>(zp + 0x228)); // cmd_line_ptr
        Assert.Equal(0u, memory.Read<uint>(zp + 0x0C8)); // ext_cmd_line_ptr
        Assert.Equal("console=ttyS0 quiet", TestImages.ReadCString(memory, 0x20000));
        Assert.Equal(0UL, memory.Read<ulong>(zp + 0x250)); // setup_data cleared

        BootPlacement rd = result.Find("initrd")!.Value;
        Assert.Equal((uint)rd.Address, memory.Read<uint>(zp + 0x218));
        Assert.Equal(100_000u, memory.Read<uint>(zp + 0x21C));
        Assert.Equal(0u, memory.Read<uint>(zp + 0x0C0));
        Assert.Equal(0u, memory.Read<uint>(zp + 0x0C4));

        // e820: count at 0x1E8, entries at 0x2D0.
        Assert.Equal(3, memory.Read<byte>(zp + 0x1E8));
        Assert.Equal(0UL, memory.Read<ulong>(zp + 0x2D0));
        Assert.Equal(0x9FC00UL, memory.Read<ulong>(zp + 0x2D0 + 8));
        Assert.Equal(1u, memory.Read<uint>(zp + 0x2D0 + 16));
        Assert.Equal(0x9FC00UL, memory.Read<ulong>(zp + 0x2D0 + 20));
        Assert.Equal(2u, memory.Read<uint>(zp + 0x2D0 + 36));
        Assert.Equal(0x100000UL, memory.Read<ulong>(zp + 0x2D0 + 40));
        Assert.Equal(Ram - 0x100000, memory.Read<ulong>(zp + 0x2D0 + 48));
        Assert.Equal(1u, memory.Read<uint>(zp + 0x2D0 + 56));
    }

    [Fact]
    public void InitrdGoesAsHighAsPossibleBelowInitrdAddrMax()
    {
        var spec = new BzImageSpec { InitrdAddrMax = 0x1FF_FFFF }; // 32 MiB - 1
        string kernel = _files.Write("bzImage", spec.Build());
        string initrd = _files.WritePattern("initrd", 10_000, 3);
        using GuestMemory memory = GuestMemory.CreateRam(Ram);

        BootResult result = BootLoader.Load(memory, new BootRequest(kernel) { InitrdPath = initrd });

        BootPlacement rd = result.Find("initrd")!.Value;
        Assert.Equal(0x200_0000UL - 0x3000, rd.Address); // 10,000 bytes round up to 3 pages
        byte[] loaded = new byte[10_000];
        memory.Read(rd.Address, loaded);
        Assert.Equal(File.ReadAllBytes(initrd), loaded);
    }

    [Fact]
    public void InitrdAtTheTopOfRamWhenInitrdAddrMaxIsHigher()
    {
        string kernel = _files.Write("bzImage", new BzImageSpec().Build());
        string initrd = _files.WritePattern("initrd", 8192, 3);
        using GuestMemory memory = GuestMemory.CreateRam(Ram);

        BootResult result = BootLoader.Load(memory, new BootRequest(kernel) { InitrdPath = initrd });

        Assert.Equal(Ram - 8192, result.Find("initrd")!.Value.Address);
    }

    [Fact]
    public void InitrdSkipsTheKernelInitSizeSpan()
    {
        // initrd_addr_max ends inside the kernel's span 16..20 MiB: the initrd goes below the kernel.
        var spec = new BzImageSpec { InitrdAddrMax = 0x120_0000 };
        string kernel = _files.Write("bzImage", spec.Build());
        string initrd = _files.WritePattern("initrd", 0x10_0000, 3);
        using GuestMemory memory = GuestMemory.CreateRam(Ram);

        BootResult result = BootLoader.Load(memory, new BootRequest(kernel) { InitrdPath = initrd });

        BootPlacement rd = result.Find("initrd")!.Value;
        Assert.Equal(0x100_0000UL - 0x10_0000, rd.Address);
        Assert.False(rd.Overlaps(0x100_0000, 0x40_0000));
    }

    [Fact]
    public void ExtraInitrdsFollowTheInitrdEachFourByteAlignedWithZeroPadding()
    {
        string kernel = _files.Write("bzImage", new BzImageSpec().Build());
        string initrd = _files.WritePattern("initrd", 1001, 3);
        string hook = _files.WritePattern("hook.cpio", 22, 7);
        string more = _files.WritePattern("more.cpio", 8, 9);
        using GuestMemory memory = GuestMemory.CreateRam(Ram);

        BootResult result = BootLoader.Load(memory, new BootRequest(kernel) { InitrdPath = initrd, ExtraInitrdPaths = [hook, more] });

        // 1001 bytes, 3 bytes of padding, 22 bytes at 1004, 2 of padding, 8 bytes at 1028: 1036 in all.
        ulong zp = result.State.Rsi;
        ulong address = memory.Read<uint>(zp + 0x218);
        Assert.Equal(1036u, memory.Read<uint>(zp + 0x21C));
        byte[] loaded = new byte[1036];
        memory.Read(address, loaded);
        Assert.Equal(File.ReadAllBytes(initrd), loaded[..1001]);
        Assert.Equal(new byte[3], loaded[1001..1004]);
        Assert.Equal(File.ReadAllBytes(hook), loaded[1004..1026]);
        Assert.Equal(new byte[2], loaded[1026..1028]);
        Assert.Equal(File.ReadAllBytes(more), loaded[1028..]);
    }

    [Fact]
    public void MissingExtraInitrdIsAClearError()
    {
        string kernel = _files.Write("bzImage", new BzImageSpec().Build());
        string missing = Path.Combine(_files.Directory, "no-hook.cpio");
        using GuestMemory memory = GuestMemory.CreateRam(Ram);

        BootImageException e = Assert.Throws<BootImageException>(() => BootLoader.Load(memory, new BootRequest(kernel) { ExtraInitrdPaths = [missing] }));

        Assert.Contains("no-hook.cpio", e.Message);
    }

    [Fact]
    public void InitrdThatDoesNotFitIsAClearError()
    {
        string kernel = _files.Write("bzImage", new BzImageSpec().Build());
        string initrd = _files.WriteSparse("initrd", 50 << 20); // 64 MiB guest: 16..20 MiB kernel leaves 15 + 44 MiB
        using GuestMemory memory = GuestMemory.CreateRam(Ram);

        BootImageException e = Assert.Throws<BootImageException>(() => BootLoader.Load(memory, new BootRequest(kernel) { InitrdPath = initrd }));

        Assert.StartsWith(initrd + ": initrd (50 MiB) does not fit in guest RAM", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void KernelThatDoesNotFitIsAClearError()
    {
        var spec = new BzImageSpec { InitSize = 0x400_0000 }; // 16 MiB + 64 MiB > 64 MiB
        string kernel = _files.Write("bzImage", spec.Build());
        using GuestMemory memory = GuestMemory.CreateRam(Ram);

        BootImageException e = Assert.Throws<BootImageException>(() => BootLoader.Load(memory, new BootRequest(kernel)));

        Assert.Equal(kernel, e.FilePath);
        Assert.Contains("the kernel does not fit in guest RAM: it needs 0x1000000-0x5000000", e.Message);
        Assert.Contains("at least 80 MiB", e.Message);
    }

    [Fact]
    public void CommandLineLongerThanCmdlineSizeIsRejected()
    {
        string kernel = _files.Write("bzImage", new BzImageSpec { CmdlineSize = 16 }.Build());
        using GuestMemory memory = GuestMemory.CreateRam(Ram);

        BootLoader.Load(memory, new BootRequest(kernel) { CommandLine = new string('x', 16) });
        BootImageException e = Assert.Throws<BootImageException>(() => BootLoader.Load(memory, new BootRequest(kernel) { CommandLine = new string('x', 17) }));

        Assert.Equal($"{kernel}: the command line is 17 bytes long but this kernel accepts at most 16", e.Message);
    }

    [Fact]
    public void CommandLineWithNulIsRejected()
    {
        string kernel = _files.Write("bzImage", new BzImageSpec().Build());
        using GuestMemory memory = GuestMemory.CreateRam(Ram);

        BootImageException e = Assert.Throws<BootImageException>(() => BootLoader.Load(memory, new BootRequest(kernel) { CommandLine = "a\0b" }));
        Assert.Contains("NUL", e.Message);
    }

    [Fact]
    public void ModulesAreRejectedForLinux()
    {
        string kernel = _files.Write("bzImage", new BzImageSpec().Build());
        string module = _files.WritePattern("mod", 100, 1);
        using GuestMemory memory = GuestMemory.CreateRam(Ram);

        BootImageException e = Assert.Throws<BootImageException>(() => BootLoader.Load(memory, new BootRequest(kernel) { Modules = [new BootModule(module)] }));
        Assert.Contains("modules are for Multiboot kernels", e.Message);
    }

    public static TheoryData<string, BzImageSpec, string> BadImages => new()
    {
        { "shorter than a boot sector", new BzImageSpec { Length = 0x100 }, "truncated: 256 bytes is too short" },
        { "no boot flag", new BzImageSpec { BootFlag = 0 }, "not a bzImage: no 0xAA55 boot flag at offset 0x1FE" },
        { "no HdrS", new BzImageSpec { Magic = "HdrX" }, "not a bzImage: no \"HdrS\" setup header at offset 0x202" },
        { "old protocol", new BzImageSpec { Protocol = 0x020A }, "boot protocol 2.10 is too old: the 64-bit entry needs 2.12 or newer" },
        { "32-bit only", new BzImageSpec { XLoadFlags = 0x0002 }, "is a 32-bit-only kernel (XLF_KERNEL_64 is clear in xloadflags)" },
        { "zImage", new BzImageSpec { LoadFlags = 0 }, "is a zImage" },
        { "header too short", new BzImageSpec { HeaderLength = 0x20 }, "setup header length (ends at 0x222)" },
        { "shorter than setup", new BzImageSpec { SetupSects = 30, Length = 0x1000 }, "truncated: 4096 bytes is shorter than its 15872-byte setup code" },
        { "shorter than syssize", new BzImageSpec { Length = 5 * 512 + 0x800 }, "truncated: syssize says the kernel is 4096 bytes after the 2560-byte setup, but the file has only 2048" },
        { "zero syssize", new BzImageSpec { SysSize = 0, Length = 0x1000 }, "syssize is zero" },
        { "bad alignment", new BzImageSpec { KernelAlignment = 0x30_0000 }, "kernel_alignment 0x300000 is not a power of two" },
        { "zero init_size", new BzImageSpec { InitSize = 0 }, "init_size is zero" },
    };

    [Theory]
    [MemberData(nameof(BadImages))]
    public void BadImagesGiveOneLineErrorsNamingTheFile(string what, BzImageSpec spec, string expected)
    {
        string kernel = _files.Write("bad-" + what.Replace(' ', '-'), spec.Build());

        BootImageException e = Assert.Throws<BootImageException>(() => BzImage.Parse(kernel, File.ReadAllBytes(kernel)));

        Assert.StartsWith(kernel + ": ", e.Message);
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void NonRelocatableKernelLoadsAtPrefAddressOnly()
    {
        var spec = new BzImageSpec { Relocatable = false, PrefAddress = 0x20_0000, KernelAlignment = 0x30_0000 };
        string kernel = _files.Write("bzImage", spec.Build());
        using GuestMemory memory = GuestMemory.CreateRam(Ram);

        Assert.Equal(0x20_0000UL, BootLoader.Load(memory, new BootRequest(kernel)).Find("kernel")!.Value.Address);

        string low = _files.Write("low", (spec with { PrefAddress = 0x8_0000 }).Build());
        BootImageException e = Assert.Throws<BootImageException>(() => BootLoader.Load(memory, new BootRequest(low)));
        Assert.Contains("not relocatable and its pref_address 0x80000 is below 1 MiB", e.Message);
    }
}
