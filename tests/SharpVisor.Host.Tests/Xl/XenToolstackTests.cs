using SharpVisor.Host.Daemon;
using SharpVisor.TestSupport;
using static SharpVisor.Host.Tests.CliSessionTests;

namespace SharpVisor.Host.Tests.Xl;

/// <summary>
/// A Xen PVH domain under the daemon, as an xl user drives it: created from an xl.cfg, listed
/// with its type, its XenStore read, written and pruned with the xenstore tools, its memory
/// target set through XenStore, its console (hvc0) showing the guest. One boot of the
/// default guest on the emulator.
/// </summary>
public sealed class XenToolstackTests
{
    [DefaultGuestFact]
    public async Task APvhDomainFromAnXlConfigIsListedAndItsXenStoreIsReachable()
    {
        using var directory = new TempDirectory();
        string runtime = directory.File("run");
        string config = directory.File("xenweb.cfg");
        File.WriteAllText(config, $"""
            # the default guest as a Xen PVH domain
            name = "xenweb"
            type = "pvh"
            kernel = "{GuestBootCapability.Kernel}"
            ramdisk = "{GuestBootCapability.Initrd}"
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

            Assert.Contains("XenStore memory/target", Ok(Run(env, "mem-set", "xenweb", "200")));
            Assert.Equal("204800", Ok(Run(env, "xenstore-read", "xenweb", "memory/target")).Trim());

            Ok(Run(env, "destroy", "xenweb"));
        }
        finally
        {
            StopDaemon(runtime);
        }
    }

    private static string Ok(Result result)
    {
        Assert.True(result.ExitCode == 0, $"exit status {result.ExitCode}: {result.Stderr}");
        return result.Stdout;
    }
}
