using SharpVisor.Boot;
using SharpVisor.Machine.Protection;
using SharpVisor.TestSupport;

namespace SharpVisor.Security.Tests;

public sealed class KernelImageLayoutTests
{
    [Fact]
    public void TextAndTheReadOnlySectionsUpToDataAreTakenPageAligned()
    {
        KernelImageLayout layout = KernelImageLayout.Parse("synthetic", SyntheticKernel.Build());
        Assert.Equal(new ProtectedRange(SyntheticKernel.TextStart, SyntheticKernel.TextStart + SyntheticKernel.TextSize), layout.Text);
        // .rodata and __ex_table are adjacent: one range, rounded up to the page after __ex_table.
        ProtectedRange r = Assert.Single(layout.ReadOnlyData);
        Assert.Equal(SyntheticKernel.RodataStart, r.Start);
        Assert.Equal(SyntheticKernel.RodataStart + 0x3000, r.End);
        Assert.Equal(64, layout.KernelDigest.Length);
    }

    [Fact]
    public void AnImageWithoutSectionsIsRefusedWithItsReason()
    {
        byte[] image = SyntheticKernel.Build();
        image.AsSpan(0x3C, 2).Clear(); // no section headers
        var e = Assert.Throws<BootImageException>(() => KernelImageLayout.Parse("k", image));
        Assert.Contains("section header table", e.Message);
    }

    /// <summary>Debian's vmlinuz: the vmlinux inside is stripped of symbols but keeps its sections.</summary>
    [Fact]
    public void TheDefaultGuestsKernelHasItsTextAndRodataFound()
    {
        Assert.True(File.Exists(GuestBootCapability.Kernel), $"the default guest's kernel {GuestBootCapability.Kernel} is missing: run scripts/build-guest.sh");
        KernelImageLayout layout = KernelImageLayout.Load(GuestBootCapability.Kernel);
        Assert.Equal(0xFFFF_FFFF_8100_0000UL, layout.Text.Start);
        Assert.Contains(layout.Sections, s => s.Name == "__ex_table");
        Assert.Equal(0xFFFF_FFFF_8200_0000UL, layout.ReadOnlyData[0].Start);
        Assert.All(layout.ReadOnlyData, r => Assert.True(r.End <= layout.Sections.First(s => s.Name == ".data").Address));
        // The kernel reports "NNNNK rodata" for [__start_rodata, __end_rodata): what we protect.
        Assert.InRange((long)layout.ReadOnlyData.Sum(r => (long)r.Length) >> 10, 4096, 32768);
    }
}
