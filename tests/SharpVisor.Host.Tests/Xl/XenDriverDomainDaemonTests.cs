using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using SharpVisor.Host.Daemon;
using SharpVisor.TestSupport;
using Xunit.Abstractions;
using static SharpVisor.Host.Tests.CliSessionTests;

namespace SharpVisor.Host.Tests.Xl;

/// <summary>
/// A driver domain under the daemon (docs/xen.md, "Driver domains"): xl.cfg's type = "driver"
/// runs SharpVisor's blkback in a domain process of its own, and the default guest as a PVH
/// domain gets its xvda from it (disk = ['...,backend=NAME']). The guest writes 1 MiB chunks of
/// a random pattern with O_DIRECT and fsync; during that I/O the test kills the driver domain's
/// VMM with SIGKILL. The front end keeps running, the daemon starts the driver domain again
/// (counted: restarts 1), the new blkback takes over the connected ring and serves the requests
/// that were in flight, so every write completes, the guest reads the pattern back, and the host
/// file holds every chunk. One boot of the default guest on the emulator.
/// </summary>
public sealed class XenDriverDomainDaemonTests(ITestOutputHelper output)
{
    private const int Chunks = 24;
    private static readonly TimeSpan s_guestTimeout = TimeSpan.FromMinutes(10);

    [DefaultGuestFact]
    public async Task KillingTheDriverDomainDuringIoLeavesTheFrontEndRunningAndTheRestartedOneFinishesTheWrites()
    {
        using var directory = new TempDirectory();
        string runtime = directory.File("run");
        string image = directory.File("xvda.img");
        using (FileStream file = File.Create(image))
        {
            file.SetLength(32 << 20);
        }

        string hook =
            "i=0; while [ ! -e /sys/block/xvda/size ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done\n" +
            "echo \"XVDA $(cat /sys/block/xvda/size)\"\n" +
            "dd if=/dev/urandom of=/tmp/p bs=64k count=16 2>/dev/null\n" +
            "echo \"PATTERN $(md5sum < /tmp/p | cut -d' ' -f1)\"\n" +
            $"n=0; while [ $n -lt {Chunks} ]; do dd if=/tmp/p of=/dev/xvda bs=64k seek=$((n*16)) oflag=direct conv=fsync 2>/dev/null; echo \"WROTE $n $?\"; n=$((n+1)); done\n" +
            "echo 3 > /proc/sys/vm/drop_caches\n" +
            $"echo \"READBACK $(dd if=/dev/xvda bs=64k skip={(Chunks - 1) * 16} count=16 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)\"\n" +
            "echo HOOK-END\n" +
            "sleep 3600\n";
        string ramdisk = HookedInitrd.Write(directory.File("initrd-hook.img"), hook);
        string driverConfig = directory.File("dd.cfg");
        File.WriteAllText(driverConfig, """
            name = "blkdd"
            type = "driver"
            """);
        string guestConfig = directory.File("fe.cfg");
        File.WriteAllText(guestConfig, $"""
            name = "fe"
            type = "pvh"
            kernel = "{GuestBootCapability.Kernel}"
            ramdisk = "{ramdisk}"
            extra = "console=hvc0 reboot=k panic=-1"
            memory = 256
            disk = [ 'file:{image},xvda,w,backend=blkdd' ]
            """);
        var env = new Dictionary<string, string> { [RuntimeDirectory.EnvironmentVariable] = runtime };
        try
        {
            Ok(Run(env, "create", driverConfig, "--accel", "emulator"));
            Ok(Run(env, "create", guestConfig, "--accel", "emulator"));
            Assert.Matches(@"blkdd\s+running\s+.*driver", Ok(Run(env, "list")));

            string pattern = (await ConsoleLineAsync(env, "PATTERN ")).Split(' ')[1];
            await ConsoleLineAsync(env, "WROTE 2 ");

            // SIGKILL during the writes: no goodbye to the front end.
            JsonElement before = Domain(env, "blkdd");
            int pid = before.GetProperty("pid").GetInt32();
            Process.Start("kill", ["-KILL", pid.ToString(CultureInfo.InvariantCulture)])!.WaitForExit();

            JsonElement after = default;
            await Eventually.TrueAsync(
                () =>
                {
                    after = Domain(env, "blkdd");
                    return after.GetProperty("state").GetString() == "running" && after.TryGetProperty("pid", out JsonElement p) && p.GetInt32() != pid;
                },
                TimeSpan.FromMinutes(2),
                "the daemon starts the driver domain again");
            Assert.Equal(1, after.GetProperty("restarts").GetInt32());
            Assert.Equal("running", Domain(env, "fe").GetProperty("state").GetString());

            await ConsoleLineAsync(env, "HOOK-END");
            string console = Run(env, "console", "fe", "--history").Stdout;
            for (int n = 0; n < Chunks; n++)
            {
                Assert.Contains($"WROTE {n} 0", console);
            }

            Assert.Contains($"READBACK {pattern}", console);
            Assert.DoesNotContain("I/O error", console);
            byte[] disk = File.ReadAllBytes(image);
            for (int n = 0; n < Chunks; n++)
            {
                Assert.Equal(pattern, Convert.ToHexStringLower(MD5.HashData(disk.AsSpan(n << 20, 1 << 20))));
            }

            // What the kill interrupted: the new blkback says how many requests it found unanswered.
            string driverLog = File.ReadAllText(Path.Combine(runtime, "domains", "1", "vmm.log"));
            output.WriteLine(string.Join('\n', driverLog.Split('\n').Where(l => l.Contains("took over", StringComparison.Ordinal) || l.Contains("serving domain", StringComparison.Ordinal))));
            output.WriteLine(string.Join('\n', console.Split('\n').Where(l => l.StartsWith("WROTE", StringComparison.Ordinal))));

            Ok(Run(env, "destroy", "fe"));
            Ok(Run(env, "destroy", "blkdd"));
        }
        catch
        {
            // What the two domains said, for the failure's report.
            output.WriteLine(Run(env, "console", "fe", "--history").Stdout);
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
            Run(env, "destroy", "blkdd");
            StopDaemon(runtime);
        }
    }

    private static async Task<string> ConsoleLineAsync(IDictionary<string, string> env, string prefix)
    {
        string? found = null;
        await Eventually.TrueAsync(
            () => (found = Run(env, "console", "fe", "--history").Stdout.Split('\n').FirstOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal))) is not null,
            s_guestTimeout,
            $"the guest prints '{prefix}'");
        return found!.TrimEnd('\r');
    }

    private static JsonElement Domain(IDictionary<string, string> env, string name)
    {
        using JsonDocument list = JsonDocument.Parse(Ok(Run(env, "list", "--json")));
        return list.RootElement.EnumerateArray().Single(d => d.GetProperty("name").GetString() == name).Clone();
    }

    private static string Ok(Result result)
    {
        Assert.True(result.ExitCode == 0, $"exit status {result.ExitCode}: {result.Stderr}");
        return result.Stdout;
    }
}
