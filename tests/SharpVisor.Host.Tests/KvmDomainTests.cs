using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using SharpVisor.Host.Client;
using SharpVisor.Host.Daemon;
using SharpVisor.Host.Scheduling;
using SharpVisor.TestSupport;

namespace SharpVisor.Host.Tests;

/// <summary>
/// The control plane for real: sharpvisord starting each domain as its own `sharpvisor vmm`
/// process on KVM, running the Multiboot test kernel, whose "tick N" console lines show
/// whether the guest makes progress.
/// </summary>
public sealed partial class KvmDomainTests
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(60);

    [GeneratedRegex(@"tick (\d+)")]
    private static partial Regex TickPattern();

    [KvmFact]
    public async Task ThreeDomainsRunPauseCrashAndSurviveADaemonRestart()
    {
        await using DaemonTestHost host = await DaemonTestHost.StartAsync(SharpVisorCommand.Launcher());
        foreach (string name in new[] { "a", "b", "c" })
        {
            await host.Client.CreateAsync(host.Request(name, bootArgs: "loop=20000", memoryMib: 16, kernel: TestKernels.MultibootHello) with { Accelerator = "kvm" });
        }

        List<DomainInfo> domains = await host.Client.ListAsync();
        Assert.Equal(["a", "b", "c"], domains.Select(d => d.Name));
        Assert.All(domains, d => Assert.Equal(("running", "kvm"), (d.State, d.Accelerator)));
        Assert.Equal(3, domains.Select(d => d.Pid).Distinct().Count());
        foreach (string name in new[] { "a", "b", "c" })
        {
            await WaitForTickAsync(host.Client, name, 3);
        }

        string history = Encoding.UTF8.GetString(await host.Client.ConsoleHistoryAsync("a"));
        Assert.Contains("Hello from a multiboot kernel", history);
        Assert.Contains("cmdline: loop=20000", history);

        // Pause stops the guest: no new ticks while paused; unpause resumes.
        await host.Client.PauseAsync("b");
        await Task.Delay(TimeSpan.FromMilliseconds(300)); // output already on its way to the daemon lands first
        int pausedAt = await LastTickAsync(host.Client, "b");
        int aBefore = await LastTickAsync(host.Client, "a");
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        Assert.Equal(pausedAt, await LastTickAsync(host.Client, "b"));
        await WaitForTickAsync(host.Client, "a", aBefore + 2);
        await host.Client.UnpauseAsync("b");
        await WaitForTickAsync(host.Client, "b", pausedAt + 2);

        // Killing one domain's process marks it crashed; the others run on.
        int bPid = (await host.Client.GetAsync("b")).Pid!.Value;
        Process.GetProcessById(bPid).Kill();
        await Eventually.TrueAsync(async () => (await host.Client.GetAsync("b")).State == "crashed", s_timeout, "b is crashed");
        Assert.Contains($"pid {bPid}", (await host.Client.GetAsync("b")).Detail);
        int cNow = await LastTickAsync(host.Client, "c");
        await WaitForTickAsync(host.Client, "c", cNow + 2);
        Assert.Equal("running", (await host.Client.GetAsync("a")).State);

        // A restarted daemon finds the running domains (same processes) and the dead one.
        int aPid = (await host.Client.GetAsync("a")).Pid!.Value;
        await host.StopDaemonAsync();
        await host.StartDaemonAsync();
        domains = await host.Client.ListAsync();
        Assert.Equal([("a", "running"), ("b", "crashed"), ("c", "running")], domains.Select(d => (d.Name, d.State)));
        Assert.Equal(aPid, domains[0].Pid);

        // The VMM replays its own console ring to the new daemon, so the boot log survives.
        Assert.Contains("Hello from a multiboot kernel", Encoding.UTF8.GetString(await host.Client.ConsoleHistoryAsync("a")));
        int aAfterRestart = await LastTickAsync(host.Client, "a");
        await WaitForTickAsync(host.Client, "a", aAfterRestart + 2);
        Assert.Equal("paused", (await host.Client.PauseAsync("c")).State);

        // Destroy ends the process.
        int cPid = (await host.Client.GetAsync("c")).Pid!.Value;
        await host.Client.DestroyAsync("c");
        Assert.False(ProcessInfo.IsAlive(cPid, null));
        Assert.Equal(["a", "b"], (await host.Client.ListAsync()).Select(d => d.Name));
    }

    [KvmFact]
    public async Task ShutdownPowersTheGuestOffAndSaysHow()
    {
        await using DaemonTestHost host = await DaemonTestHost.StartAsync(SharpVisorCommand.Launcher());
        await host.Client.CreateAsync(host.Request("loop", bootArgs: "loop=20000", memoryMib: 16, kernel: TestKernels.MultibootHello) with { Accelerator = "kvm" });
        await host.Client.CreateAsync(host.Request("deaf", bootArgs: "loop=20000 noacpi", memoryMib: 16, kernel: TestKernels.MultibootHello) with { Accelerator = "kvm" });
        await host.Client.CreateAsync(host.Request("quits", bootArgs: "exit=3", memoryMib: 16, kernel: TestKernels.MultibootHello) with { Accelerator = "kvm" });
        await WaitForTickAsync(host.Client, "loop", 1);
        await WaitForTickAsync(host.Client, "deaf", 1);
        int pid = (await host.Client.GetAsync("loop")).Pid!.Value;
        int deafPid = (await host.Client.GetAsync("deaf")).Pid!.Value;

        // The test kernel polls PM1a_STS and enters S5 on a power-button press, as an ACPI OS does.
        ShutdownResult result = await host.Client.ShutdownAsync("loop", 30);

        Assert.True(result.Graceful, result.Detail);
        Assert.Equal("shutdown", result.Domain.State);
        Assert.False(ProcessInfo.IsAlive(pid, null));

        // With "noacpi" it ignores the button: after the timeout it is forced off, and says so.
        ShutdownResult forced = await host.Client.ShutdownAsync("deaf", 2);

        Assert.False(forced.Graceful);
        Assert.StartsWith("forced off: the guest did not react", forced.Detail);
        Assert.Equal("shutdown", forced.Domain.State);
        Assert.False(ProcessInfo.IsAlive(deafPid, null));

        // A guest that ends by itself (debug exit) is shut down with its reason.
        await Eventually.TrueAsync(async () => (await host.Client.GetAsync("quits")).State == "shutdown", s_timeout, "quits is shut down");
        Assert.Contains("debug exit with value 0x03", (await host.Client.GetAsync("quits")).Detail);

        await host.Client.DestroyAsync("loop");
        await host.Client.DestroyAsync("deaf");
        await host.Client.DestroyAsync("quits");
        Assert.Empty(await host.Client.ListAsync());
    }

    [KvmFact]
    public async Task SchedulingAndPinningReachTheVmmProcess()
    {
        string group = "sharpvisor-test-" + Guid.NewGuid().ToString("N")[..8];
        await using DaemonTestHost host = await DaemonTestHost.StartAsync(SharpVisorCommand.Launcher(), cgroupName: group);
        await host.Client.CreateAsync(host.Request("web", bootArgs: "loop=20000", memoryMib: 16, kernel: TestKernels.MultibootHello) with { Accelerator = "kvm" });
        int pid = (await host.Client.GetAsync("web")).Pid!.Value;

        await host.Client.PinVcpuAsync("web", "0", "1");
        int vcpuThread = Assert.Single(ProcessInfo.FindThreads(pid, "vcpu0"));
        Assert.Equal([1], ThreadAffinity.Get(vcpuThread));

        CgroupCpuController? cgroups = host.Server!.Registry.Environment.Cgroups;
        if (cgroups is null)
        {
            DaemonException refused = await Assert.ThrowsAsync<DaemonException>(() => host.Client.SetScheduleAsync("web", new ScheduleRequest { Weight = 512 }));
            Assert.Contains("not available", refused.Message);
            return;
        }

        DomainSchedule schedule = await host.Client.SetScheduleAsync("web", new ScheduleRequest { Weight = 512, Cap = 50 });

        Assert.Equal((512, 50), (schedule.Weight, schedule.Cap));
        string domainGroup = cgroups.GroupPath(1);
        Assert.Contains(pid, cgroups.Processes(1));
        if (cgroups.Version == CgroupVersion.V2)
        {
            Assert.Equal("200", File.ReadAllText(Path.Combine(domainGroup, "cpu.weight")).Trim());
            Assert.Equal("50000 100000", File.ReadAllText(Path.Combine(domainGroup, "cpu.max")).Trim());
        }
        else
        {
            Assert.Equal("2048", File.ReadAllText(Path.Combine(domainGroup, "cpu.shares")).Trim());
            Assert.Equal("50000", File.ReadAllText(Path.Combine(domainGroup, "cpu.cfs_quota_us")).Trim());
        }

        DaemonException badWeight = await Assert.ThrowsAsync<DaemonException>(() => host.Client.SetScheduleAsync("web", new ScheduleRequest { Weight = 0 }));
        Assert.Equal(400, badWeight.StatusCode);
        Assert.Equal(512, (await host.Client.GetScheduleAsync("web")).Weight);

        await host.Client.DestroyAsync("web");
        Assert.False(Directory.Exists(domainGroup));
    }

    [KvmFact]
    public async Task ADomainWithADriveAndABalloonBootsAndMemSetReachesItsBalloon()
    {
        await using DaemonTestHost host = await DaemonTestHost.StartAsync(SharpVisorCommand.Launcher());
        if (!HostCapabilities.IsRoot || !File.Exists("/dev/net/tun"))
        {
            Assert.Fail("SKIPPED — NEEDS root and /dev/net/tun: the domain's NIC is a TAP the VMM creates");
        }

        string tap = $"svd{Environment.ProcessId % 100000}";
        string image = host.Directory.File("rootfs.img");
        File.WriteAllBytes(image, new byte[1 << 20]);
        CreateDomainRequest request = host.Request("io", bootArgs: "loop=20000", memoryMib: 32, kernel: TestKernels.MultibootHello, balloon: true);
        request = request with
        {
            Config = request.Config with
            {
                Drives = [new SharpVisor.Host.Firecracker.Drive { DriveId = "rootfs", IsRootDevice = true, PathOnHost = image }],

                // A TAP the VMM creates (root has CAP_NET_ADMIN) and that goes away with it.
                NetworkInterfaces = [new SharpVisor.Host.Firecracker.NetworkInterface { IfaceId = "eth0", HostDevName = tap, GuestMac = "06:00:ac:10:00:02" }],
            },
        };

        await host.Client.CreateAsync(request);
        await WaitForTickAsync(host.Client, "io", 1);
        Assert.True(Directory.Exists($"/sys/class/net/{tap}"), $"the VMM did not create TAP {tap}");
        await host.Client.SetMemoryAsync("io", 24);

        string metrics = await host.Client.MetricsAsync();
        Assert.Contains("sharpvisor_domain_balloon_target_bytes{domain=\"io\",id=\"1\"} 8388608\n", metrics);
        Assert.Contains("sharpvisor_domain_balloon_actual_bytes{domain=\"io\",id=\"1\"} 0\n", metrics); // this guest has no balloon driver
        Assert.Contains("sharpvisor_domain_device_requests_total{domain=\"io\",id=\"1\",device=\"rootfs\",direction=\"read\"} 0\n", metrics);
        Assert.Contains("sharpvisor_domain_device_requests_total{domain=\"io\",id=\"1\",device=\"balloon0\",direction=\"write\"} 0\n", metrics);
        Assert.Contains("sharpvisor_domain_device_bytes_total{domain=\"io\",id=\"1\",device=\"eth0\",direction=\"write\"} 0\n", metrics);

        DaemonException tooMuch = await Assert.ThrowsAsync<DaemonException>(() => host.Client.SetMemoryAsync("io", 64));
        Assert.Equal(400, tooMuch.StatusCode);
        await host.Client.DestroyAsync("io");
        await Eventually.TrueAsync(() => !Directory.Exists($"/sys/class/net/{tap}"), s_timeout, $"TAP {tap} is gone with its VMM");
    }

    private static async Task<int> LastTickAsync(DaemonClient client, string domain)
    {
        string history = Encoding.UTF8.GetString(await client.ConsoleHistoryAsync(domain));
        MatchCollection ticks = TickPattern().Matches(history);
        return ticks.Count == 0 ? 0 : int.Parse(ticks[^1].Groups[1].Value, CultureInfo.InvariantCulture);
    }

    private static Task WaitForTickAsync(DaemonClient client, string domain, int tick) =>
        Eventually.TrueAsync(async () => await LastTickAsync(client, domain) >= tick, s_timeout, $"{domain} prints tick {tick}");
}
