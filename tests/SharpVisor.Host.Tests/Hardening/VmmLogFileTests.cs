using SharpVisor.Host.Vmm;

namespace SharpVisor.Host.Tests.Hardening;

/// <summary>Issue 17, item 1: the VMM's log file is capped, rotated, and never throws.</summary>
public sealed class VmmLogFileTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    [Fact]
    public void AMillionLinesStayUnderTheCapWithTheNewestKept()
    {
        const long limit = 64 * 1024;
        string path = _directory.File("vmm.log");
        using (var log = new VmmLogFile(path, limit))
        {
            for (int i = 0; i < 1_000_000; i++)
            {
                log.WriteLine($"disk0: virtio-block: device needs reset: line {i}");
            }

            Assert.Equal(0, log.DroppedWrites);
        }

        Assert.InRange(new FileInfo(path).Length, 1, limit);
        Assert.InRange(new FileInfo(path + ".1").Length, limit / 2, limit);
        Assert.EndsWith("line 999999", File.ReadAllLines(path)[^1], StringComparison.Ordinal);
        Assert.False(File.Exists(path + ".2"));
    }

    [Fact]
    public void ALineLongerThanTheFileIsCutNotRefused()
    {
        string path = _directory.File("vmm.log");
        using (var log = new VmmLogFile(path, 8192))
        {
            log.WriteLine(new string('x', 100_000));
            log.WriteLine("after");
        }

        Assert.InRange(new FileInfo(path).Length, 1, 8192);
        Assert.Equal("after", File.ReadAllLines(path)[^1]);
    }

    [Fact]
    public void AFullDiskDropsLinesWithoutThrowing()
    {
        using var log = new VmmLogFile("/dev/full");
        for (int i = 0; i < 1_000_000; i++)
        {
            log.WriteLine("virtio-balloon: PFNs outside guest memory");
        }

        Assert.Equal(1_000_000, log.DroppedWrites);
    }

    [Fact]
    public void ItAppendsToWhatTheLauncherAlreadyWrote()
    {
        string path = _directory.File("vmm.log");
        File.WriteAllText(path, "earlier run\n");
        using (var log = new VmmLogFile(path))
        {
            log.WriteLine("this run");
        }

        Assert.Equal(["earlier run", "this run"], File.ReadAllLines(path));
    }
}
