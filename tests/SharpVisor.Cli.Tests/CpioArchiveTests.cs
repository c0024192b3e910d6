using System.Diagnostics;
using SharpVisor.TestSupport;

namespace SharpVisor.Cli.Tests;

/// <summary>The archives the end-to-end tests append to the initrd unpack with GNU cpio, as the kernel's unpacker reads them.</summary>
public sealed class CpioArchiveTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("sv-cpio-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void ArchiveUnpacksWithItsFilesAndModes()
    {
        if (!File.Exists("/usr/bin/cpio"))
        {
            Assert.Fail("SKIPPED — NEEDS /usr/bin/cpio (apt-get install cpio) to check the archive format");
        }

        byte[] data = Enumerable.Range(0, 1001).Select(i => (byte)i).ToArray();
        string archive = Path.Combine(_directory, "hook.cpio");
        new CpioArchive().AddFile("hook.sh", "echo hi\n").AddFile("data/pattern.bin", data, mode: 0x1A4).WriteTo(archive);
        Assert.Equal(0, new FileInfo(archive).Length % 4);
        Directory.CreateDirectory(Path.Combine(_directory, "out", "data"));

        var start = new ProcessStartInfo("cpio", ["-i", "--quiet", "-F", archive]) { WorkingDirectory = Path.Combine(_directory, "out"), RedirectStandardError = true };
        using Process cpio = Process.Start(start)!;
        string error = cpio.StandardError.ReadToEnd();
        cpio.WaitForExit();

        Assert.True(cpio.ExitCode == 0, error);
        Assert.Equal("echo hi\n", File.ReadAllText(Path.Combine(_directory, "out", "hook.sh")));
        Assert.Equal(data, File.ReadAllBytes(Path.Combine(_directory, "out", "data", "pattern.bin")));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute,
            File.GetUnixFileMode(Path.Combine(_directory, "out", "hook.sh")));
    }
}
