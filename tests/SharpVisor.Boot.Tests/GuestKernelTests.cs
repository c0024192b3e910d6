using SharpVisor.Memory;

namespace SharpVisor.Boot.Tests;

/// <summary>The real default guest kernel (a Debian cloud bzImage), parsed and loaded.</summary>
public sealed class GuestKernelTests : IDisposable
{
    private readonly TempFiles _files = new();

    public void Dispose() => _files.Dispose();

    [GuestKernelFact]
    public void ParsesTheRealKernel()
    {
        BzImage image = Assert.IsType<BzImage>(KernelImage.Detect(GuestKernelFactAttribute.Path));

        Assert.True(image.Protocol >= BzImage.MinimumProtocol);
        Assert.True(image.Relocatable);
        Assert.Equal(BootParams.XlfKernel64, image.XLoadFlags & BootParams.XlfKernel64);
        Assert.True(image.PrefAddress >= 0x10_0000);
        Assert.Equal(0UL, image.PrefAddress % image.KernelAlignment);
        Assert.True(image.InitSize > image.ProtectedModeSize, "init_size covers the decompressed kernel");
        Assert.True(new FileInfo(GuestKernelFactAttribute.Path).Length >= image.SetupSize + (long)image.ProtectedModeSize);
        Assert.True(image.CommandLineSize >= 255);
    }

    [GuestKernelFact]
    public void LoadsTheRealKernelWithAnInitrdInto256MiBForItsOwnDecompressor()
    {
        const ulong ram = 256UL << 20;
        string kernel = GuestKernelFactAttribute.Path;
        BzImage image = (BzImage)KernelImage.Detect(kernel);
        byte[] file = File.ReadAllBytes(kernel);
        string initrd = _files.WritePattern("initrd", 1 << 20, 42);
        using GuestMemory memory = GuestMemory.CreateRam(ram);

        BootResult result = BootLoader.Load(memory, new BootRequest(kernel) { CommandLine = "console=ttyS0 panic=-1", InitrdPath = initrd, KernelDecompressor = KernelDecompressor.Guest });

        // The protected-mode kernel is at pref_address, byte for byte.
        ulong load = image.PrefAddress;
        Assert.Equal(load + 0x200, result.EntryPoint);
        int payload = (int)image.ProtectedModeSize;
        byte[] head = new byte[4096];
        byte[] tail = new byte[4096];
        memory.Read(load, head);
        memory.Read(load + (ulong)payload - 4096, tail);
        Assert.Equal(file.AsSpan(image.SetupSize, 4096).ToArray(), head);
        Assert.Equal(file.AsSpan(image.SetupSize + payload - 4096, 4096).ToArray(), tail);

        // boot_params: the kernel's own header plus the loader's fields.
        const ulong zp = BootLayout.ZeroPageAddress;
        Assert.Equal(image.Protocol, memory.Read<ushort>(zp + 0x206));
        Assert.Equal(image.InitSize, memory.Read<uint>(zp + 0x260));
        Assert.Equal(image.PrefAddress, memory.Read<ulong>(zp + 0x258));
        Assert.Equal(0xFF, memory.Read<byte>(zp + 0x210));
        Assert.Equal("console=ttyS0 panic=-1", TestImages.ReadCString(memory, memory.Read<uint>(zp + 0x228)));

        // The initrd: page aligned, as high as allowed, clear of the kernel's init_size span, intact.
        ulong rd = memory.Read<uint>(zp + 0x218);
        Assert.Equal(1u << 20, memory.Read<uint>(zp + 0x21C));
        Assert.Equal(0UL, rd % 4096);
        Assert.Equal(Math.Min(ram, (ulong)image.InitrdAddressMax + 1) - (1UL << 20), rd);
        Assert.True(rd >= load + image.InitSize);
        byte[] initrdBytes = new byte[1 << 20];
        memory.Read(rd, initrdBytes);
        Assert.Equal(File.ReadAllBytes(initrd), initrdBytes);

        Assert.True(result.State.Cs.Long);
        Assert.Equal(zp, result.State.Rsi);
    }

    [GuestKernelFact]
    public void TheVmmDecompressesTheRealKernelAndEntersStartup64()
    {
        const ulong ram = 256UL << 20;
        string kernel = GuestKernelFactAttribute.Path;
        byte[] file = File.ReadAllBytes(kernel);
        BzImage image = (BzImage)KernelImage.Detect(kernel);
        byte[] vmlinux = PvhImage.ExtractVmlinux(kernel, file, out _);
        ElfFile elf = ElfFile.Parse(kernel, vmlinux);
        string initrd = _files.WritePattern("initrd", 1 << 20, 42);
        using GuestMemory memory = GuestMemory.CreateRam(ram);

        BootResult result = BootLoader.Load(memory, new BootRequest(kernel) { CommandLine = "console=ttyS0", InitrdPath = initrd, AcpiRsdpAddress = 0xE_0000 });

        // Debian's kernel: linked at pref_address (16 MiB), e_entry is phys_startup_64, the image's first byte.
        Assert.Equal(KernelDecompressor.Vmm, result.Decompressor);
        Assert.Equal(image.PrefAddress, result.EntryPoint);
        Assert.Equal(image.PrefAddress, elf.Entry);
        foreach (ElfProgramHeader segment in elf.LoadSegments)
        {
            byte[] loaded = new byte[Math.Min(4096, (int)segment.FileSize)];
            memory.Read(segment.PhysicalAddress, loaded);
            Assert.Equal(vmlinux.AsSpan((int)segment.Offset, loaded.Length).ToArray(), loaded);
        }

        // boot_params: the bzImage's header, no KASLR_FLAG, the RSDP.
        const ulong zp = BootLayout.ZeroPageAddress;
        // (Everything but what a loader fills in: type_of_loader, loadflags, ramdisk, heap_end_ptr, cmd_line_ptr, setup_data.)
        foreach ((int start, int end) in new[] { (0x1F1, 0x210), (0x212, 0x218), (0x220, 0x224), (0x22C, 0x250), (0x258, image.SetupHeaderEnd) })
        {
            Assert.Equal(file.AsSpan(start, end - start).ToArray(), memory.GetSpan(zp + (ulong)start, end - start).ToArray());
        }

        Assert.Equal(image.InitSize, memory.Read<uint>(zp + BootParams.InitSizeOffset));
        Assert.Equal(0, memory.Read<byte>(zp + BootParams.LoadFlagsOffset) & BootParams.KaslrFlag);
        Assert.Equal(0xE_0000UL, memory.Read<ulong>(zp + BootParams.AcpiRsdpAddrOffset));

        // The initrd stays clear of init_size and of everything the segments reach.
        ulong extent = elf.LoadSegments.Max(s => s.PhysicalAddress + s.MemorySize);
        ulong rd = memory.Read<uint>(zp + BootParams.RamdiskImageOffset);
        Assert.True(rd >= Math.Max(image.PrefAddress + image.InitSize, extent));
        Assert.Contains("LZ4 payload decompressed by the VMM", result.KernelDescription);
    }

    [GuestKernelFact]
    public void RealKernelInTooLittleRamIsAClearError()
    {
        string kernel = GuestKernelFactAttribute.Path;
        BzImage image = (BzImage)KernelImage.Detect(kernel);
        ulong needed = image.PrefAddress + image.RuntimeSize;
        ulong ram = (needed & ~0x1F_FFFFUL) - 0x20_0000;
        using GuestMemory memory = GuestMemory.CreateRam(ram);

        BootImageException e = Assert.Throws<BootImageException>(() => BootLoader.Load(memory, new BootRequest(kernel)));

        Assert.Contains("the kernel does not fit in guest RAM", e.Message);
        Assert.Contains($"give the guest at least {(needed + 0xF_FFFF) >> 20} MiB", e.Message);
    }
}
