using System.Globalization;
using System.Text.Json;
using SharpVisor.Host.Daemon;
using SharpVisor.TestSupport;
using Xunit.Abstractions;
using static SharpVisor.Host.Tests.CliSessionTests;

namespace SharpVisor.Host.Tests.Xl;

/// <summary>
/// A Xen PVH domain under the daemon, as an xl user drives it: created from an xl.cfg, listed
/// with its type, its XenStore read, written and pruned with the xenstore tools, its memory
/// target set through XenStore — and the guest's Xen balloon driver following it: MemTotal
/// falls and the VMM's resident memory shrinks — its console (hvc0) showing the guest. One boot
/// of the default guest on the emulator.
/// </summary>
public sealed class XenToolstackTests(ITestOutputHelper output)
{
    [DefaultGuestFact]
    public async Task APvhDomainFromAnXlConfigIsListedAndItsXenStoreIsReachable()
    {
        using var directory = new TempDirectory();
        string runtime = directory.File("run");
        string config = directory.File("xenweb.cfg");

        // The default initrd with a hook appended: it dirties 96 MiB (so the host has pages to get
        // back), frees them, then reports MemTotal and the balloon's current_kb every second.
        string ramdisk = directory.File("initrd-hook.img");
        const string Hook =
            "dd if=/dev/zero of=/fill bs=1M count=96 2>/dev/null; rm /fill; echo FILLED\n" +
            "while true; do echo \"MEMTOTAL $(grep MemTotal /proc/meminfo | tr -s ' ' | cut -d' ' -f2) CURRENT $(cat /sys/devices/system/xen_memory/xen_memory0/info/current_kb)\"; sleep 1; done\n";
        HookedInitrd.Write(ramdisk, Hook);

        File.WriteAllText(config, $"""
            # the default guest as a Xen PVH domain
            name = "xenweb"
            type = "pvh"
            kernel = "{GuestBootCapability.Kernel}"
            ramdisk = "{ramdisk}"
            extra = "console=hvc0 reboot=k panic=-1"
            memory = 256
            vcpus = 1
            """);
        string hvm = directory.File("hvm.cfg");
        File.WriteAllText(hvm, $"type = \"hvm\"\nkernel = \"{GuestBootCapability.Kernel}\"\n");
        var env = new Dictionary<string, string> { [RuntimeDirectory.EnvironmentVariable] = runtime };
        try
        {
            Assert.Contains("created domain xenweb (id 1): 1 vCPU(s), 256 MiB, emulator, pvh", Ok(Run(env, "create", config, "--accel", "emulator")));
            AssertRefused(Run(env, "create", hvm, "--accel", "kvm"), "a hvm domain cannot run on KVM here");
            AssertRefused(Run(env, "create", config, "--name", "onkvm", "--accel", "kvm"), "a pvh domain cannot run on KVM here");
            Assert.Matches(@"1\s+xenweb\s+running\s+1\s+256\s+\S+\s+pvh\s+emulator", Run(env, "list").Stdout);

            await Eventually.TrueAsync(
                () => Run(env, "console", "xenweb", "--history").Stdout.Contains("GUEST-READY", StringComparison.Ordinal),
                TimeSpan.FromMinutes(5),
                "the guest's hvc0 reaches the domain's console");

            string tree = Ok(Run(env, "xenstore-ls", "xenweb"));
            Assert.Contains("name = \"xenweb\"", tree);
            Assert.Contains("memory = \"\"", tree);
            Assert.Contains(" target = \"262144\"", tree);
            Assert.Contains("domid = \"1\"", tree);

            Ok(Run(env, "xenstore-write", "xenweb", "data/greeting", "hello from dom0"));
            Assert.Equal("hello from dom0", Ok(Run(env, "xenstore-read", "xenweb", "data/greeting")).Trim());
            Assert.Equal("hello from dom0", Ok(Run(env, "xenstore-read", "xenweb", "/local/domain/1/data/greeting")).Trim());
            Ok(Run(env, "xenstore-rm", "xenweb", "data"));
            AssertRefused(Run(env, "xenstore-read", "xenweb", "data/greeting"), "no XenStore node");

            // The balloon: mem-set writes memory/target; the guest gives the pages back
            // (decrease_reservation) and the host releases them.
            await Eventually.TrueAsync(
                () => Run(env, "console", "xenweb", "--history").Stdout.Contains("MEMTOTAL", StringComparison.Ordinal),
                TimeSpan.FromMinutes(5),
                "the hook reports the guest's memory");
            (long memTotalBefore, _) = LastMemoryReport(env);
            long rssBefore = VmmResidentKib(env);
            Assert.Contains("XenStore memory/target", Ok(Run(env, "mem-set", "xenweb", "128")));
            Assert.Equal("131072", Ok(Run(env, "xenstore-read", "xenweb", "memory/target")).Trim());
            await Eventually.TrueAsync(
                () => LastMemoryReport(env).CurrentKib <= 132 * 1024,
                TimeSpan.FromMinutes(3),
                "the guest's balloon driver reaches the 128 MiB target");
            (long memTotalAfter, long currentAfter) = LastMemoryReport(env);
            long rssAfter = VmmResidentKib(env);
            output.WriteLine($"mem-set 256 -> 128 MiB: MemTotal {memTotalBefore} -> {memTotalAfter} kB, balloon current_kb {currentAfter}, VMM RssShmem {rssBefore} -> {rssAfter} kB");
            Assert.True(memTotalBefore - memTotalAfter >= 100 * 1024, $"MemTotal {memTotalBefore} kB -> {memTotalAfter} kB (current {currentAfter} kB)");
            Assert.True(rssBefore - rssAfter >= 48 * 1024, $"the VMM's resident guest memory {rssBefore} kB -> {rssAfter} kB");

            Ok(Run(env, "destroy", "xenweb"));
        }
        finally
        {
            StopDaemon(runtime);
        }
    }

    /// <summary>The hook's last "MEMTOTAL m CURRENT c" line (kB) on the domain's console.</summary>
    private static (long MemTotalKib, long CurrentKib) LastMemoryReport(IDictionary<string, string> env)
    {
        string line = Run(env, "console", "xenweb", "--history").Stdout.Split('\n')
            .Last(l => l.StartsWith("MEMTOTAL ", StringComparison.Ordinal) && l.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length == 4);
        string[] fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return (long.Parse(fields[1], CultureInfo.InvariantCulture), long.Parse(fields[3], CultureInfo.InvariantCulture));
    }

    /// <summary>The domain VMM's resident shared memory (the guest RAM memfd's pages it maps), in KiB.</summary>
    private static long VmmResidentKib(IDictionary<string, string> env)
    {
        using JsonDocument list = JsonDocument.Parse(Ok(Run(env, "list", "--json")));
        int pid = list.RootElement.EnumerateArray().Single(d => d.GetProperty("name").GetString() == "xenweb").GetProperty("pid").GetInt32();
        string line = File.ReadAllLines($"/proc/{pid}/status").Single(l => l.StartsWith("RssShmem:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
    }

    private static string Ok(Result result)
    {
        Assert.True(result.ExitCode == 0, $"exit status {result.ExitCode}: {result.Stderr}");
        return result.Stdout;
    }
}
