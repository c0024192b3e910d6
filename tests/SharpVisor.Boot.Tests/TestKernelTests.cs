using SharpVisor.Memory;

namespace SharpVisor.Boot.Tests;

/// <summary>The multiboot-hello test kernel, built from tests/kernels by scripts/build-test-kernels.sh.</summary>
public sealed class TestKernelTests : IDisposable
{
    private readonly TempFiles _files = new();

    public void Dispose() => _files.Dispose();

    [AssemblerFact]
    public void BuildsReproducibly()
    {
        string[] first = TestKernels.Build(Path.Combine(_files.Directory, "a"));
        string[] second = TestKernels.Build(Path.Combine(_files.Directory, "b"));

        Assert.Equal(Path.Combine(_files.Directory, "a", "test-kernels", "multiboot-hello.elf"), Assert.Single(first));
        Assert.Equal(File.ReadAllBytes(first[0]), File.ReadAllBytes(second[0]));
    }

    [AssemblerFact]
    public void ParsesAsAMultibootElf32Kernel()
    {
        MultibootImage image = Assert.IsType<MultibootImage>(KernelImage.Detect(TestKernels.MultibootHello));

        Assert.NotNull(image.Elf);
        Assert.Equal(32, image.Elf.Bits);
        Assert.Equal(MultibootHeader.FlagPageAlignModules | MultibootHeader.FlagMemoryInfo, image.Header.Flags);
        Assert.False(image.Header.HasAddressFields);
        Assert.InRange(image.Entry, 0x10_0000UL, 0x10_1000UL);
        Assert.Equal(2, image.Elf.LoadSegments.Count());
    }

    [AssemblerFact]
    public void LoadsWithModulesAndCommandLine()
    {
        string kernel = TestKernels.MultibootHello;
        string module = _files.WritePattern("module.bin", 5000, 1);
        using GuestMemory memory = GuestMemory.CreateRam(128UL << 20);
        memory.Fill(0x10_0000, 0x10000, 0xCC);

        BootResult result = BootLoader.Load(memory, new BootRequest(kernel)
        {
            CommandLine = "exit=3",
            Modules = [new BootModule(module, "module.bin arg")],
        });

        MultibootImage image = (MultibootImage)KernelImage.Detect(kernel);
        byte[] file = File.ReadAllBytes(kernel);
        foreach (ElfProgramHeader segment in image.Elf!.LoadSegments)
        {
            byte[] loaded = new byte[segment.MemorySize];
            memory.Read(segment.PhysicalAddress, loaded);
            Assert.Equal(file.AsSpan((int)segment.Offset, (int)segment.FileSize).ToArray(), loaded[..(int)segment.FileSize]);
            Assert.All(loaded[(int)segment.FileSize..], b => Assert.Equal(0, b));
        }

        ulong kernelEnd = image.Elf.LoadSegments.Max(s => s.PhysicalAddress + s.MemorySize);
        BootPlacement placed = result.Find("module 0")!.Value;
        Assert.Equal((kernelEnd + 0xFFF) & ~0xFFFUL, placed.Address);
        Assert.Equal(image.Entry, result.EntryPoint);
        Assert.Equal(0x2BAD_B002UL, result.State.Rax);
        Assert.False(result.State.Cs.Long);
        Assert.Equal("exit=3", TestImages.ReadCString(memory, TestImages.U32(memory, result.State.Rbx + 16)));
        Assert.Equal(1u, TestImages.U32(memory, result.State.Rbx + 20));
        Assert.Contains("Multiboot kernel (ELF32", result.Describe());
    }
}
