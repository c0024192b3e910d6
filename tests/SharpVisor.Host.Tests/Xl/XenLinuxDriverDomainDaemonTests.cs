using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using SharpVisor.Host.Daemon;
using SharpVisor.TestSupport;
using Xunit.Abstractions;
using static SharpVisor.Host.Tests.CliSessionTests;

namespace SharpVisor.Host.Tests.Xl;

/// <summary>
/// A Linux guest as the driver domain (Xen's IDD; docs/xen.md, "A Linux guest as the driver
/// domain"): the default guest as a PVH domain loads Debian's xen-blkback and serves another PVH
/// domain's xvda (<c>disk = ['phy:/dev/xvda,xvda,w,backend=lindd']</c>) from its own xvda. The
/// front end writes a dd pattern with O_DIRECT and reads it back; the driver domain's own disk —
/// a host file served by its VMM's blkback — holds it. Two boots of the default guest, one after
/// the other.
/// </summary>
public sealed class XenLinuxDriverDomainDaemonTests(ITestOutputHelper output)
{
    private const int PatternMib = 4;
    private static readonly TimeSpan s_guestTimeout = TimeSpan.FromMinutes(10);

    [DefaultGuestFact]
    public async Task TheFrontEndsDiskIsServedByLinuxBlkbackInAnotherDomain()
    {
        using var directory = new TempDirectory();
        string runtime = directory.File("run");
        string image = directory.File("dd-xvda.img");
        using (FileStream file = File.Create(image))
        {
            file.SetLength(32 << 20);
        }

        string driverHook =
            "insmod /xen-blkback.ko; echo \"BLKBACK $?\"\n" +
            "sleep 3600\n";
        string driverRamdisk = HookedInitrd.Write(
            directory.File("initrd-dd.img"),
            new CpioArchive().AddFile("hook.sh", driverHook).AddFile("xen-blkback.ko", BlkbackModule(directory), 0x1A4));
        string frontHook =
            "i=0; while [ ! -e /sys/block/xvda/size ] && [ $i -lt 3000 ]; do sleep 0.1; i=$((i+1)); done\n" +
            "echo \"XVDA $(cat /sys/block/xvda/size 2>/dev/null)\"\n" +
            $"dd if=/dev/urandom of=/tmp/p bs=1M count={PatternMib} 2>/dev/null\n" +
            "echo \"PATTERN $(md5sum < /tmp/p | cut -d' ' -f1)\"\n" +
            "s=$(cut -d' ' -f1 /proc/uptime)\n" +
            "dd if=/tmp/p of=/dev/xvda bs=1M oflag=direct conv=fsync 2>/dev/null; r=$?\n" +
            "e=$(cut -d' ' -f1 /proc/uptime)\n" +
            "echo \"WROTE $r $s $e\"\n" +
            "echo 3 > /proc/sys/vm/drop_caches\n" +
            $"echo \"READBACK $(dd if=/dev/xvda bs=1M count={PatternMib} iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)\"\n" +
            "echo HOOK-END\n" +
            "sleep 3600\n";
        string frontRamdisk = HookedInitrd.Write(directory.File("initrd-fe.img"), frontHook);
        string driverConfig = directory.File("dd.cfg");
        File.WriteAllText(driverConfig, $"""
            name = "lindd"
            type = "pvh"
            kernel = "{GuestBootCapability.Kernel}"
            ramdisk = "{driverRamdisk}"
            extra = "console=hvc0 reboot=k panic=-1"
            memory = 256
            disk = [ 'file:{image},xvda,w' ]
            """);
        string frontConfig = directory.File("fe.cfg");
        File.WriteAllText(frontConfig, """
            name = "fe"
            type = "pvh"
            kernel = "KERNEL"
            ramdisk = "RAMDISK"
            extra = "console=hvc0 reboot=k panic=-1"
            memory = 256
            disk = [ 'phy:/dev/xvda,xvda,w,backend=lindd' ]
            """.Replace("KERNEL", GuestBootCapability.Kernel, StringComparison.Ordinal).Replace("RAMDISK", frontRamdisk, StringComparison.Ordinal));
        var env = new Dictionary<string, string> { [RuntimeDirectory.EnvironmentVariable] = runtime };
        try
        {
            Ok(Run(env, "create", driverConfig, "--accel", "emulator"));
            Assert.Equal("BLKBACK 0", await ConsoleLineAsync(env, "lindd", "BLKBACK "));

            // The driver domain's blkback is loaded before the front end exists (one boot at a time).
            Ok(Run(env, "create", frontConfig, "--accel", "emulator"));
            string pattern = (await ConsoleLineAsync(env, "fe", "PATTERN ")).Split(' ')[1];
            string[] wrote = (await ConsoleLineAsync(env, "fe", "WROTE ")).Split(' ');
            Assert.Equal("0", wrote[1]);
            double seconds = double.Parse(wrote[3], CultureInfo.InvariantCulture) - double.Parse(wrote[2], CultureInfo.InvariantCulture);
            Assert.Equal($"READBACK {pattern}", await ConsoleLineAsync(env, "fe", "READBACK "));

            // Through Linux's blkback into the driver domain's xvda, which its VMM keeps in the host file.
            byte[] disk = File.ReadAllBytes(image);
            Assert.Equal(pattern, Convert.ToHexStringLower(MD5.HashData(disk.AsSpan(0, PatternMib << 20))));
            string dd = Run(env, "console", "lindd", "--history").Stdout;
            output.WriteLine($"front end: {PatternMib} MiB written with O_DIRECT + fsync in {seconds:F2} s of guest time ({PatternMib / seconds:F2} MiB/s); load average {File.ReadAllText("/proc/loadavg").Trim()}");
            output.WriteLine(string.Join('\n', dd.Split('\n').Where(l => l.Contains("blkback", StringComparison.OrdinalIgnoreCase) || l.Contains("xen", StringComparison.OrdinalIgnoreCase)).TakeLast(20)));

            Ok(Run(env, "destroy", "fe"));
            Ok(Run(env, "destroy", "lindd"));
        }
        catch
        {
            foreach (string name in new[] { "lindd", "fe" })
            {
                output.WriteLine($"--- console of {name}");
                output.WriteLine(Run(env, "console", name, "--history").Stdout);
            }

            foreach (string log in Directory.EnumerateFiles(Path.Combine(runtime, "domains"), "vmm.log", SearchOption.AllDirectories).Append(Path.Combine(runtime, "sharpvisord.log")))
            {
                output.WriteLine($"--- {log}");
                output.WriteLine(string.Join('\n', File.ReadAllLines(log).TakeLast(40)));
            }

            throw;
        }
        finally
        {
            Run(env, "destroy", "fe");
            Run(env, "destroy", "lindd");
            StopDaemon(runtime);
        }
    }

    /// <summary>Debian's xen-blkback.ko, from the kernel package the default guest was built from (it is not in the initramfs).</summary>
    private static byte[] BlkbackModule(TempDirectory directory)
    {
        string debs = Path.Combine(GuestBootCapability.CacheDirectory, "guest", "debs");
        string deb = Directory.EnumerateFiles(debs, "linux-image-*.deb").Single();
        string into = directory.File("deb");
        Directory.CreateDirectory(into);
        using Process extract = Process.Start("bash", ["-c", "dpkg-deb --fsys-tarfile \"$1\" | tar -x -C \"$2\" --wildcards '*/xen-blkback.ko'", "extract", deb, into])!;
        extract.WaitForExit();
        Assert.Equal(0, extract.ExitCode);
        return File.ReadAllBytes(Directory.EnumerateFiles(Path.Combine(into, "lib", "modules"), "xen-blkback.ko", SearchOption.AllDirectories).Single());
    }

    private static async Task<string> ConsoleLineAsync(IDictionary<string, string> env, string domain, string prefix)
    {
        string? found = null;
        await Eventually.TrueAsync(
            () => (found = Run(env, "console", domain, "--history").Stdout.Split('\n').FirstOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal))) is not null,
            s_guestTimeout,
            $"{domain} prints '{prefix}'");
        return found!.TrimEnd('\r');
    }

    private static string Ok(Result result)
    {
        Assert.True(result.ExitCode == 0, $"exit status {result.ExitCode}: {result.Stderr}");
        return result.Stdout;
    }
}
