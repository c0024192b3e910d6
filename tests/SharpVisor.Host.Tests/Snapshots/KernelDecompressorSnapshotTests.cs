using SharpVisor.Boot;
using SharpVisor.Host.Vmm;
using SharpVisor.Machine.Snapshots;

namespace SharpVisor.Host.Tests.Snapshots;

/// <summary>
/// A snapshot (and a migration, which sends the same section) remembers who decompressed the
/// kernel, so the machine rebuilt from it boots the same way again; snapshots from before the
/// choice existed were booted by the guest's decompressor and load as such.
/// </summary>
public sealed class KernelDecompressorSnapshotTests
{
    [Theory]
    [InlineData(KernelDecompressor.Vmm)]
    [InlineData(KernelDecompressor.Guest)]
    public void TheChoiceSurvivesTheMachineSection(KernelDecompressor decompressor)
    {
        byte[] saved = Save(new MachineConfiguration { KernelPath = "/k", KernelDecompressor = decompressor });

        Assert.Equal(decompressor, Load(saved).KernelDecompressor);
    }

    [Fact]
    public void ASectionWrittenBeforeTheChoiceExistedLoadsAsTheGuestDecompressor()
    {
        byte[] saved = Save(new MachineConfiguration { KernelPath = "/k", KernelDecompressor = KernelDecompressor.Vmm });

        Assert.Equal(KernelDecompressor.Guest, Load(saved[..^4]).KernelDecompressor);
    }

    [Fact]
    public void AnUnknownValueIsRefusedWithOneLine()
    {
        byte[] saved = Save(new MachineConfiguration { KernelPath = "/k" });
        saved[^4] = 7;

        SnapshotException e = Assert.Throws<SnapshotException>(() => Load(saved));
        Assert.Contains("unknown kernel decompressor 7", e.Message);
    }

    private static byte[] Save(MachineConfiguration configuration) =>
        SnapshotConfiguration.Save(configuration, AcceleratorKind.Emulator, MmuKind.Shadow, CpuVendorKind.Intel);

    private static MachineConfiguration Load(byte[] saved)
    {
        var reader = new SnapshotReader(SnapshotConfiguration.Tag, saved);
        MachineConfiguration loaded = SnapshotConfiguration.Load(reader, out _);
        reader.EnsureEnd();
        return loaded;
    }
}
