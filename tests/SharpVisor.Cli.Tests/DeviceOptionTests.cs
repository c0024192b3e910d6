using SharpVisor.TestSupport;

namespace SharpVisor.Cli.Tests;

/// <summary>
/// `sharpvisor run` device options: bad ones get one clear error line (exit status 125) before
/// anything is built; good ones are announced with where the guest will find each device.
/// </summary>
public sealed class DeviceOptionTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("sv-devopt-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    public static TheoryData<string[], string> BadOptions => new()
    {
        { ["--disk", "/nonexistent/disk.img"], "disk image '/nonexistent/disk.img' does not exist" },
        { ["--disk", "/tmp"], "'/tmp' is a directory" },
        { ["--disk", "/dev/null"], "'/dev/null' is not a regular file" },
        { ["--disk", ",ro"], "no image path" },
        { ["--net", "user"], "only TAP networking" },
        { ["--net", "tap,mac=01:00:5e:00:00:01"], "multicast" },
        { ["--net", "tap,mac=06:00:0a"], "six hex bytes" },
        { ["--net", "tap=tap0,speed=fast"], "unknown option 'speed=fast'" },
        { ["--net", "tap=a-name-longer-than-15"], "not a valid interface name" },
        { ["--extra-initrd", "/nonexistent/hook.cpio"], "extra initrd '/nonexistent/hook.cpio' does not exist" },
        { ["--balloon", "lots"], "'lots' is not a size" },
        { ["--balloon", "64G"], "balloon target 65536 MiB is out of range" },
    };

    [Theory]
    [MemberData(nameof(BadOptions))]
    public void BadDeviceOptionsAreOneLineErrors(string[] options, string expected)
    {
        SharpVisorProcess.Result result = SharpVisorProcess.Run(["run", "--serial", "none", "--kernel", DefaultGuestFiles.MultibootHello, "--memory", "64M", .. options]);

        Assert.Equal(125, result.ExitCode);
        string error = Assert.Single(result.StandardError.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.StartsWith("sharpvisor: error:", StringComparison.Ordinal));
        Assert.Contains(expected, error);
        Assert.DoesNotContain("   at ", result.StandardError);
    }

    [Fact]
    public void ADiskOptionWithAnUnknownFlag()
    {
        string image = Image("flags.img");
        SharpVisorProcess.Result result = SharpVisorProcess.Run(["run", "--serial", "none", "--kernel", DefaultGuestFiles.MultibootHello, "--disk", $"{image},rw,fast"]);

        Assert.Equal(125, result.ExitCode);
        Assert.Contains("unknown option 'fast'", result.StandardError);
    }

    [KvmFact]
    public void DevicesAreAnnouncedAndTheMachineRunsWithThem()
    {
        string image = Image("vda.img");
        string hvc = Path.Combine(_directory, "hvc0.log");
        SharpVisorProcess.Result result = SharpVisorProcess.Run(
            ["run", "--kernel", DefaultGuestFiles.MultibootHello, "--cmdline", "exit=0", "--memory", "64M",
             "--disk", $"{image},ro,id=system", "--disk", Image("vdb.img"), "--balloon", "8M", "--virtio-console", hvc],
            timeout: TimeSpan.FromSeconds(120));

        Assert.Equal(1, result.ExitCode);
        Assert.Contains($"system: virtio-blk pci 00:01.0 /dev/vda {image} (1 MiB, read-only)", result.StandardError);
        Assert.Contains("disk1: virtio-blk pci 00:02.0 /dev/vdb", result.StandardError);
        Assert.Contains("balloon0: virtio-balloon pci 00:03.0", result.StandardError);
        Assert.Contains("console0: virtio-console pci 00:04.0", result.StandardError);
        Assert.Contains("rng0: virtio-entropy pci 00:05.0", result.StandardError);
        Assert.True(File.Exists(hvc));
    }

    [KvmFact]
    public void CreatingATapWithoutCapNetAdminSaysSo()
    {
        if (!HostCapabilities.IsRoot || !File.Exists("/dev/net/tun"))
        {
            Assert.Fail("SKIPPED — NEEDS root and /dev/net/tun to drop CAP_NET_ADMIN from a root process");
        }

        // Root without CAP_NET_ADMIN (dropped from the bounding and inheritable sets) keeps /dev/kvm.
        SharpVisorProcess.Result result = SharpVisorProcess.Run(
            ["run", "--serial", "none", "--kernel", DefaultGuestFiles.MultibootHello, "--memory", "64M", "--net", "tap=svnocap0"],
            wrapper: ["setpriv", "--bounding-set=-net_admin", "--inh-caps=-net_admin"]);

        Assert.Equal(125, result.ExitCode);
        string error = Assert.Single(result.StandardError.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.StartsWith("sharpvisor: error:", StringComparison.Ordinal));
        Assert.Contains("cannot create or attach TAP 'svnocap0': Operation not permitted", error);
        Assert.Contains("CAP_NET_ADMIN", error);
    }

    private string Image(string name)
    {
        string path = Path.Combine(_directory, name);
        File.WriteAllBytes(path, new byte[1 << 20]);
        return path;
    }
}
