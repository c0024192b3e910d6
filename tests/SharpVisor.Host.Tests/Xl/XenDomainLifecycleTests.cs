using System.Text.Json;
using SharpVisor.Host.Daemon;
using SharpVisor.TestSupport;
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
public sealed class XenDomainLifecycleTests
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
    /// </summary>
    [DefaultGuestFact]
    public async Task APvDomainFromAnXlConfigBootsUnderTheDaemon()
    {
        using var directory = new TempDirectory();
        string runtime = directory.File("run");
        string ramdisk = HookedInitrd.Write(directory.File("initrd-hook.img"), "echo \"PV-DOMAIN $(cat /sys/hypervisor/guest_type)\"\nsleep 3600\n");
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
            Assert.Equal(0, Run(env, "destroy", "pvguest").ExitCode);
        }
        finally
        {
            Run(env, "destroy", "pvguest");
            StopDaemon(runtime);
        }
    }

    private static JsonElement Domain(IDictionary<string, string> env)
    {
        using JsonDocument list = JsonDocument.Parse(Run(env, "list", "--json").Stdout);
        return list.RootElement.EnumerateArray().Single(d => d.GetProperty("name").GetString() == "crashy").Clone();
    }
}
