using System.Text.Json;
using SharpVisor.Host.Daemon;
using SharpVisor.TestSupport;
using Xunit.Abstractions;
using static SharpVisor.Host.Tests.CliSessionTests;

namespace SharpVisor.Host.Tests.Xl;

/// <summary>
/// How a Xen HVM domain's own reboot and crash reach the toolstack: an xl.cfg domain
/// (type = "hvm", a vbd) under the daemon reboots itself — the daemon starts it again — and the
/// second boot panics (sysrq c); with `xen_legacy_crash` the kernel's panic notifier reports
/// SCHEDOP_shutdown(SHUTDOWN_crash) and the domain is listed as crashed with that reason.
/// Two boots of the default guest on the emulator; poweroff (ACPI S5) is the PC path, asserted
/// by the `run` tests' exit status.
/// </summary>
public sealed class XenDomainLifecycleTests(ITestOutputHelper output)
{
    [DefaultGuestFact]
    public async Task AnHvmDomainsRebootRestartsItAndItsCrashIsListedWithXensReason()
    {
        using var directory = new TempDirectory();
        string runtime = directory.File("run");
        string image = directory.File("xvda.img");
        File.WriteAllBytes(image, new byte[4 << 20]);

        // The disk carries the boot count across the reboot.
        const string Hook =
            "i=0; while [ ! -e /sys/block/xvda/size ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done\n" +
            "if [ \"$(dd if=/dev/xvda bs=6 count=1 2>/dev/null)\" = REBOOT ]; then echo BOOT-TWO-CRASHING; echo c > /proc/sysrq-trigger; sleep 3600; fi\n" +
            "printf REBOOT | dd of=/dev/xvda conv=fsync 2>/dev/null; echo BOOT-ONE-REBOOTING; reboot -f\n";
        string ramdisk = HookedInitrd.Write(directory.File("initrd-hook.img"), Hook);
        string config = directory.File("crashy.cfg");
        File.WriteAllText(config, $"""
            name = "crashy"
            type = "hvm"
            kernel = "{GuestBootCapability.Kernel}"
            ramdisk = "{ramdisk}"
            extra = "console=hvc0 reboot=k panic=-1 xen_legacy_crash"
            memory = 256
            disk = [ 'file:{image},xvda,w' ]
            on_reboot = "restart"
            on_crash = "preserve"
            """);
        var env = new Dictionary<string, string> { [RuntimeDirectory.EnvironmentVariable] = runtime };
        try
        {
            Result created = Run(env, "create", config, "--accel", "emulator");
            Assert.True(created.ExitCode == 0, created.Stderr);
            Assert.Contains("hvm", created.Stdout);

            JsonElement crashed = default;
            await Eventually.TrueAsync(
                () =>
                {
                    crashed = Domain(env);
                    return crashed.GetProperty("state").GetString() == "crashed";
                },
                TimeSpan.FromMinutes(8),
                "the domain reboots once, then crashes");

            Assert.Contains("SHUTDOWN_crash", crashed.GetProperty("detail").GetString());
            Assert.Equal("REBOOT", System.Text.Encoding.ASCII.GetString(File.ReadAllBytes(image), 0, 6));   // boot one ran and rebooted
            string console = Run(env, "console", "crashy", "--history").Stdout;
            Assert.Contains("BOOT-TWO-CRASHING", console);                 // the daemon started it again
            Assert.Contains("sysrq: Trigger a crash", console);
            Assert.Matches(@"1\s+crashy\s+crashed\s+1\s+256\s+\S+\s+hvm\s+emulator", Run(env, "list").Stdout);
            Assert.Equal(0, Run(env, "destroy", "crashy").ExitCode);
        }
        finally
        {
            StopDaemon(runtime);
        }
    }

    /// <summary>
    /// type = "pv" in an xl.cfg: the daemon starts the VMM with --xen pv and the domain is listed
    /// as pv; the Debian kernel boots as a PV guest to the hook, which sees Xen's PV guest type.
    /// Then its balloon (the same boot): mem-set 128 has Linux's xen-balloon give machine frames
    /// back (decrease_reservation) — MemTotal falls — and mem-set 256 has it populate its pfns
    /// again with the new machine frames Xen answers (populate_physmap) — MemTotal rises back.
    /// </summary>
    [DefaultGuestFact]
    public async Task APvDomainFromAnXlConfigBootsUnderTheDaemon_AndItsBalloonGoesDownAndUp()
    {
        using var directory = new TempDirectory();
        string runtime = directory.File("run");
        const string Hook =
            "echo \"PV-DOMAIN $(cat /sys/hypervisor/guest_type)\"\n" +
            "while true; do echo \"MEMTOTAL $(grep MemTotal /proc/meminfo | tr -s ' ' | cut -d' ' -f2) CURRENT $(cat /sys/devices/system/xen_memory/xen_memory0/info/current_kb)\"; sleep 1; done\n";
        string ramdisk = HookedInitrd.Write(directory.File("initrd-hook.img"), Hook);
        string config = directory.File("pv.cfg");
        File.WriteAllText(config, $"""
            name = "pvguest"
            type = "pv"
            kernel = "{GuestBootCapability.Kernel}"
            ramdisk = "{ramdisk}"
            extra = "console=hvc0 reboot=k panic=-1"
            memory = 256
            """);
        var env = new Dictionary<string, string> { [RuntimeDirectory.EnvironmentVariable] = runtime };
        try
        {
            Result created = Run(env, "create", config, "--accel", "emulator");
            Assert.True(created.ExitCode == 0, created.Stderr);
            await Eventually.TrueAsync(
                () => Run(env, "console", "pvguest", "--history").Stdout.Contains("PV-DOMAIN PV", StringComparison.Ordinal),
                TimeSpan.FromMinutes(8),
                "the PV guest runs its hook");
            Assert.Matches(@"pvguest\s+running\s+1\s+256\s+\S+\s+pv\s+emulator", Run(env, "list").Stdout);

            await Eventually.TrueAsync(
                () => Run(env, "console", "pvguest", "--history").Stdout.Contains("MEMTOTAL", StringComparison.Ordinal),
                TimeSpan.FromMinutes(3),
                "the hook reports the guest's memory");
            (long memTotalStart, _) = LastMemoryReport(env);
            Assert.Equal(0, Run(env, "mem-set", "pvguest", "128").ExitCode);
            await Eventually.TrueAsync(
                () => LastMemoryReport(env).CurrentKib <= 132 * 1024,
                TimeSpan.FromMinutes(5),
                "the PV guest's balloon driver reaches the 128 MiB target");
            (long memTotalDown, _) = LastMemoryReport(env);
            Assert.True(memTotalStart - memTotalDown >= 100 * 1024, $"MemTotal {memTotalStart} kB -> {memTotalDown} kB");

            Assert.Equal(0, Run(env, "mem-set", "pvguest", "256").ExitCode);
            await Eventually.TrueAsync(
                () => LastMemoryReport(env).CurrentKib >= 250 * 1024,
                TimeSpan.FromMinutes(5),
                "the PV guest's balloon driver populates its pages again");
            (long memTotalUp, long currentUp) = LastMemoryReport(env);
            output.WriteLine($"PV balloon: MemTotal {memTotalStart} -> {memTotalDown} -> {memTotalUp} kB (current_kb at the end {currentUp})");
            Assert.True(memTotalUp - memTotalDown >= 100 * 1024, $"MemTotal {memTotalDown} kB -> {memTotalUp} kB");
            string console = Run(env, "console", "pvguest", "--history").Stdout;
            Assert.DoesNotContain("BUG:", console);
            Assert.DoesNotContain("Call Trace:", console);
            Assert.Equal(0, Run(env, "destroy", "pvguest").ExitCode);
        }
        finally
        {
            Run(env, "destroy", "pvguest");
            StopDaemon(runtime);
        }
    }

    /// <summary>The PV hook's last "MEMTOTAL m CURRENT c" line (kB).</summary>
    private static (long MemTotalKib, long CurrentKib) LastMemoryReport(IDictionary<string, string> env)
    {
        string line = Run(env, "console", "pvguest", "--history").Stdout.Split('\n')
            .Last(l => l.StartsWith("MEMTOTAL ", StringComparison.Ordinal) && l.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length == 4);
        string[] fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return (long.Parse(fields[1], System.Globalization.CultureInfo.InvariantCulture), long.Parse(fields[3], System.Globalization.CultureInfo.InvariantCulture));
    }

    private static JsonElement Domain(IDictionary<string, string> env)
    {
        using JsonDocument list = JsonDocument.Parse(Run(env, "list", "--json").Stdout);
        return list.RootElement.EnumerateArray().Single(d => d.GetProperty("name").GetString() == "crashy").Clone();
    }
}
