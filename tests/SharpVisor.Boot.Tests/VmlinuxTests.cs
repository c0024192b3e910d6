using SharpVisor.Memory;

namespace SharpVisor.Boot.Tests;

public sealed class VmlinuxTests : IDisposable
{
    private const ulong KernelMap = 0xFFFF_FFFF_8000_0000;
    private readonly TempFiles _files = new();
    private readonly GuestMemory _memory = GuestMemory.CreateRam(64UL << 20);

    public void Dispose()
    {
        _memory.Dispose();
        _files.Dispose();
    }

    private static byte[] Text => TestImages.Pattern(0x2345, 0x11);

    private static byte[] Data => TestImages.Pattern(0x800, 0x77);

    /// <summary>A vmlinux-like ELF64: text at 16 MiB, data with a bss tail at 18 MiB, entry at startup_64's virtual address.</summary>
    private static byte[] Vmlinux(ulong entry = KernelMap + 0x100_0000, ulong dataPhysical = 0x120_0000) => TestImages.Elf(64, entry,
    [
        new(KernelMap + 0x100_0000, 0x100_0000, Text, 0x2345),
        new(KernelMap + dataPhysical, dataPhysical, Data, 0x3000),
    ]);

    [Fact]
    public void LoadsSegmentsAtPhysicalAddressesAndZeroesBss()
    {
        _memory.Fill(0x120_0000, 0x4000, 0xCC);
        string kernel = _files.Write("vmlinux", Vmlinux());

        BootResult result = BootLoader.Load(_memory, new BootRequest(kernel) { CommandLine = "console=hvc0" });

        Assert.Equal(KernelFormat.Vmlinux, result.Format);
        byte[] text = new byte[Text.Length];
        _memory.Read(0x100_0000, text);
        Assert.Equal(Text, text);
        byte[] data = new byte[0x3000];
        _memory.Read(0x120_0000, data);
        Assert.Equal(Data, data[..0x800]);
        Assert.All(data[0x800..], b => Assert.Equal(0, b));
        Assert.Equal(0xCC, _memory.Read<byte>(0x120_3000)); // nothing beyond p_memsz touched
    }

    [Fact]
    public void EntryAtAKernelVirtualAddressBecomesPhysical()
    {
        string kernel = _files.Write("vmlinux", Vmlinux(entry: KernelMap + 0x100_0040));

        BootResult result = BootLoader.Load(_memory, new BootRequest(kernel));

        Assert.Equal(0x100_0040UL, result.EntryPoint);
        Assert.True(result.State.Cs.Long);
        Assert.Equal(BootLayout.ZeroPageAddress, result.State.Rsi);
    }

    [Fact]
    public void PhysicalEntryIsKept()
    {
        string kernel = _files.Write("vmlinux", Vmlinux(entry: 0x100_0000));

        Assert.Equal(0x100_0000UL, BootLoader.Load(_memory, new BootRequest(kernel)).EntryPoint);
    }

    [Fact]
    public void SynthesizedBootParamsCarryTheLoaderFields()
    {
        string kernel = _files.Write("vmlinux", Vmlinux());
        string initrd = _files.WritePattern("initrd", 4096, 9);

        BootResult result = BootLoader.Load(_memory, new BootRequest(kernel) { CommandLine = "root=/dev/vda", InitrdPath = initrd });

        const ulong zp = BootLayout.ZeroPageAddress;
        Assert.Equal(0xAA55, _memory.Read<ushort>(zp + 0x1FE));
        Assert.Equal(0x5372_6448u, _memory.Read<uint>(zp + 0x202));
        Assert.Equal(0xFF, _memory.Read<byte>(zp + 0x210));
        Assert.Equal(0x20000u, _memory.Read<uint>(zp + 0x228));
        Assert.Equal(2047u, _memory.Read<uint>(zp + 0x238));
        Assert.Equal("root=/dev/vda", TestImages.ReadCString(_memory, 0x20000));
        Assert.Equal((uint)((64UL << 20) - 4096), _memory.Read<uint>(zp + 0x218));
        Assert.Equal(4096u, _memory.Read<uint>(zp + 0x21C));
        Assert.Equal(3, _memory.Read<byte>(zp + 0x1E8));
        Assert.Contains(result.Placements, p => p.Name == "kernel segment 1" && p.Address == 0x120_0000 && p.Size == 0x3000);
    }

    [Fact]
    public void SegmentOutsideTheFileIsRejected()
    {
        byte[] image = Vmlinux();
        BitConverter.GetBytes((ulong)image.Length).CopyTo(image, 64 + 8); // p_offset of segment 0 = end of file
        string kernel = _files.Write("vmlinux", image);

        BootImageException e = Assert.Throws<BootImageException>(() => KernelImage.Detect(kernel));
        Assert.Contains("ELF segment 0 (file offset", e.Message);
        Assert.Contains("lies outside the", e.Message);
    }

    [Fact]
    public void SegmentOutsideRamIsRejected()
    {
        string kernel = _files.Write("vmlinux", Vmlinux(dataPhysical: 0x400_0000 - 0x1000)); // 0x3000 bytes from 64 MiB - 4 KiB

        BootImageException e = Assert.Throws<BootImageException>(() => BootLoader.Load(_memory, new BootRequest(kernel)));
        Assert.Equal($"{kernel}: kernel segment 1 at 0x3fff000-0x4002000 does not fit in guest RAM (usable RAM: 0x0-0x9fc00, 0x100000-0x4000000)", e.Message);
    }

    [Fact]
    public void SegmentOnTheBootStructuresIsRejected()
    {
        byte[] image = TestImages.Elf(64, 0x9000, [new(0x9000, 0x9000, Text, 0x2345)]);
        string kernel = _files.Write("vmlinux", image);

        BootImageException e = Assert.Throws<BootImageException>(() => BootLoader.Load(_memory, new BootRequest(kernel)));
        Assert.Contains("kernel segment 0 at 0x9000-0xb345 overlaps the PML4", e.Message);
    }

    [Fact]
    public void EntryOutsideTheSegmentsIsRejected()
    {
        string kernel = _files.Write("vmlinux", Vmlinux(entry: KernelMap + 0x200_0000));

        BootImageException e = Assert.Throws<BootImageException>(() => KernelImage.Detect(kernel));
        Assert.Contains("entry point 0xffffffff82000000 (physical 0x2000000) is not inside any loadable segment", e.Message);
    }

    [Fact]
    public void FileSizeLargerThanMemorySizeIsRejected()
    {
        byte[] image = TestImages.Elf(64, 0x100_0000, [new(0x100_0000, 0x100_0000, Text, 0x100)]);
        string kernel = _files.Write("vmlinux", image);

        BootImageException e = Assert.Throws<BootImageException>(() => KernelImage.Detect(kernel));
        Assert.Contains("more file bytes (0x2345) than memory bytes (0x100)", e.Message);
    }

    [Fact]
    public void ProgramHeadersOutsideTheFileAreRejected()
    {
        byte[] image = Vmlinux();
        BitConverter.GetBytes((ulong)image.Length - 10).CopyTo(image, 32); // e_phoff
        string kernel = _files.Write("vmlinux", image);

        BootImageException e = Assert.Throws<BootImageException>(() => KernelImage.Detect(kernel));
        Assert.Contains("ELF program headers at", e.Message);
    }

    [Fact]
    public void WrongMachineIsRejected()
    {
        byte[] image = TestImages.Elf(64, 0x100_0000, [new(0x100_0000, 0x100_0000, Text, 0x3000)], machine: 183); // aarch64
        string kernel = _files.Write("vmlinux", image);

        BootImageException e = Assert.Throws<BootImageException>(() => KernelImage.Detect(kernel));
        Assert.Contains("ELF64 machine 183 is not x86-64", e.Message);
    }
}
