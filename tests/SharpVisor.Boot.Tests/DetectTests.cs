using SharpVisor.Memory;

namespace SharpVisor.Boot.Tests;

public sealed class DetectTests : IDisposable
{
    private readonly TempFiles _files = new();

    public void Dispose() => _files.Dispose();

    [Fact]
    public void ChoosesTheFormatFromTheBytes()
    {
        string bz = _files.Write("bz", new BzImageSpec().Build());
        string vmlinux = _files.Write("vmlinux", TestImages.Elf(64, 0x100_0000, [new(0x100_0000, 0x100_0000, new byte[0x100], 0x100)]));
        string aout = _files.Write("aout", TestImages.AoutKludge());

        Assert.IsType<BzImage>(KernelImage.Detect(bz));
        Assert.IsType<VmlinuxImage>(KernelImage.Detect(vmlinux));
        Assert.IsType<MultibootImage>(KernelImage.Detect(aout));
    }

    [Fact]
    public void UnknownFileIsAClearError()
    {
        string junk = _files.WritePattern("junk", 0x4000, 0);

        BootImageException e = Assert.Throws<BootImageException>(() => KernelImage.Detect(junk));

        Assert.StartsWith(junk + ": not a kernel SharpVisor can boot: neither a bzImage", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Elf32WithoutMultibootHeaderIsAClearError()
    {
        string elf = _files.Write("elf32", TestImages.Elf(32, 0x10_0000, [new(0x10_0000, 0x10_0000, new byte[0x100], 0x100)]));

        BootImageException e = Assert.Throws<BootImageException>(() => KernelImage.Detect(elf));
        Assert.Equal($"{elf}: is a 32-bit ELF file without a Multiboot header: not a kernel SharpVisor can boot", e.Message);
    }

    [Fact]
    public void MissingKernelIsAClearError()
    {
        string missing = Path.Combine(_files.Directory, "no-such-kernel");
        using GuestMemory memory = GuestMemory.CreateRam(16UL << 20);

        BootImageException e = Assert.Throws<BootImageException>(() => BootLoader.Load(memory, new BootRequest(missing)));
        Assert.Equal($"{missing}: kernel file not found", e.Message);
    }

    [Fact]
    public void DirectoryAndEmptyFileAreClearErrors()
    {
        string empty = _files.Write("empty", []);

        Assert.Equal($"{_files.Directory}: is a directory, not a kernel file", Assert.Throws<BootImageException>(() => KernelImage.Detect(_files.Directory)).Message);
        Assert.Equal($"{empty}: kernel file is empty", Assert.Throws<BootImageException>(() => KernelImage.Detect(empty)).Message);
    }

    [Fact]
    public void MissingInitrdIsAClearError()
    {
        string kernel = _files.Write("bz", new BzImageSpec().Build());
        string missing = Path.Combine(_files.Directory, "no-initrd");
        using GuestMemory memory = GuestMemory.CreateRam(64UL << 20);

        BootImageException e = Assert.Throws<BootImageException>(() => BootLoader.Load(memory, new BootRequest(kernel) { InitrdPath = missing }));
        Assert.Equal($"{missing}: initrd file not found", e.Message);
    }
}
