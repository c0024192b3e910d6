using System.Net;
using System.Net.WebSockets;
using System.Text;
using SharpVisor.Host.Client;
using SharpVisor.Host.Daemon;
using SharpVisor.Host.Http;
using SharpVisor.Host.Tests.Fakes;
using SharpVisor.Machine;

namespace SharpVisor.Host.Tests;

/// <summary>The daemon's API and supervision over in-process VMM servers with fake machines (no KVM needed).</summary>
public sealed class DaemonApiTests
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(15);

    [Fact]
    public async Task CreatesListsAndDescribesDomains()
    {
        await using DaemonTestHost host = await DaemonTestHost.StartAsync();

        foreach (string name in new[] { "alpha", "beta", "gamma" })
        {
            await host.Client.CreateAsync(host.Request(name, vcpus: 2, memoryMib: 64));
        }

        List<DomainInfo> domains = await host.Client.ListAsync();
        Assert.Equal(["alpha", "beta", "gamma"], domains.Select(d => d.Name));
        Assert.Equal([1, 2, 3], domains.Select(d => d.Id));
        Assert.All(domains, d =>
        {
            Assert.Equal("running", d.State);
            Assert.Equal(2, d.Vcpus);
            Assert.Equal(64, d.MemoryMib);
            Assert.Equal("fake", d.Accelerator);
            Assert.NotNull(d.UptimeSeconds);
        });
        Assert.Equal("beta", (await host.Client.GetAsync("2")).Name);
        Assert.True(File.Exists(host.Runtime.Domain(1).RecordFile));
    }

    [Fact]
    public async Task DuplicateNameIsRefusedWith409AndChangesNothing()
    {
        await using DaemonTestHost host = await DaemonTestHost.StartAsync();
        await host.Client.CreateAsync(host.Request("web"));

        DaemonException error = await Assert.ThrowsAsync<DaemonException>(() => host.Client.CreateAsync(host.Request("web")));

        Assert.Equal(409, error.StatusCode);
        Assert.Contains("already exists", error.Message);
        DomainInfo only = Assert.Single(await host.Client.ListAsync());
        Assert.Equal("running", only.State);
        Assert.Equal(1, ((InProcessVmmLauncher)host.Launcher).Launches);
    }

    [Theory]
    [InlineData("""{"name": "a", "config": {"boot-source": {"kernel_image_path": "KERNEL"}""", 400, "deserializing the json body")]
    [InlineData("""{"name": "a", "config": {"boot-source": {"kernel_image_path": "KERNEL"}}, "colour": "red"}""", 400, "colour")]
    [InlineData("""{"name": "a", "config": {"boot-source": {"kernel_image_path": "KERNEL", "initrd": "x"}}}""", 400, "initrd")]
    [InlineData("""{"name": "a", "config": {"machine-config": {"vcpu_count": 1, "mem_size_mib": 32}}}""", 400, "boot source")]
    [InlineData("""{"name": "a", "config": {"boot-source": {"kernel_image_path": "/no/such/kernel"}}}""", 400, "does not exist")]
    [InlineData("""{"name": "a", "config": {"boot-source": {"kernel_image_path": "KERNEL"}, "machine-config": {"vcpu_count": 0, "mem_size_mib": 32}}}""", 400, "vcpu_count")]
    [InlineData("""{"name": "a", "config": {"boot-source": {"kernel_image_path": "KERNEL"}, "machine-config": {"vcpu_count": 1, "mem_size_mib": -5}}}""", 400, "mem_size_mib")]
    [InlineData("""{"name": "9lives", "config": {"boot-source": {"kernel_image_path": "KERNEL"}}}""", 400, "name")]
    [InlineData("""{"name": "a b", "config": {"boot-source": {"kernel_image_path": "KERNEL"}}}""", 400, "name")]
    [InlineData("""{"name": "a", "accelerator": "warp", "config": {"boot-source": {"kernel_image_path": "KERNEL"}}}""", 400, "accelerator")]
    [InlineData("""{"name": "a"}""", 400, "config")]
    [InlineData("[]", 400, "deserializing the json body")]
    [InlineData("""{"name": "a", "type": "pvh", "config": {"boot-source": {"kernel_image_path": "KERNEL"}, "drives": [{"drive_id": "xvda", "is_root_device": false, "path_on_host": "KERNEL", "xen_backend": "nodd"}]}}""", 400, "backend 'nodd' is not a driver domain")]
    [InlineData("""{"name": "a", "type": "pc", "config": {"boot-source": {"kernel_image_path": "KERNEL"}, "drives": [{"drive_id": "vda", "is_root_device": false, "path_on_host": "KERNEL", "xen_backend": "dd"}]}}""", 400, "only a Xen domain's vbds")]
    [InlineData("""{"name": "a", "type": "driver", "config": {"boot-source": {"kernel_image_path": "KERNEL"}}}""", 400, "a driver domain has no kernel")]
    public async Task BadCreateRequestsAreRefusedAndChangeNothing(string body, int status, string expectedInMessage)
    {
        await using DaemonTestHost host = await DaemonTestHost.StartAsync();

        (HttpStatusCode code, string message) = await PostRawAsync(host, "/domains", body.Replace("KERNEL", host.Kernel));

        Assert.Equal(status, (int)code);
        Assert.Contains(expectedInMessage, message, StringComparison.OrdinalIgnoreCase);
        Assert.Empty(await host.Client.ListAsync());
        Assert.Empty(Directory.EnumerateDirectories(host.Runtime.DomainsDirectory));
        Assert.Equal(0, ((InProcessVmmLauncher)host.Launcher).Launches);
    }

    [Fact]
    public async Task OversizedCreateBodyIsRefusedWith413()
    {
        await using DaemonTestHost host = await DaemonTestHost.StartAsync();
        string body = "{\"name\": \"a\", \"config\": {\"boot-source\": {\"kernel_image_path\": \"" + host.Kernel + "\", \"boot_args\": \"" + new string('x', 300_000) + "\"}}}";

        (HttpStatusCode code, string message) = await PostRawAsync(host, "/domains", body);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, code);
        Assert.Contains("limit", message);
        Assert.Empty(await host.Client.ListAsync());
    }

    [Fact]
    public async Task FailedBootIsA400AndLeavesNoDomain()
    {
        var launcher = new InProcessVmmLauncher();
        launcher.Factory.RefuseWith = "not a bzImage, ELF or Multiboot kernel";
        await using DaemonTestHost host = await DaemonTestHost.StartAsync(launcher);

        DaemonException error = await Assert.ThrowsAsync<DaemonException>(() => host.Client.CreateAsync(host.Request("broken")));

        Assert.Equal(400, error.StatusCode);
        Assert.Contains("not a bzImage", error.Message);
        Assert.Empty(await host.Client.ListAsync());
        Assert.Empty(Directory.EnumerateDirectories(host.Runtime.DomainsDirectory));
    }

    [Fact]
    public async Task PauseAndUnpauseFollowTheStateMachine()
    {
        var launcher = new InProcessVmmLauncher();
        await using DaemonTestHost host = await DaemonTestHost.StartAsync(launcher);
        await host.Client.CreateAsync(host.Request("web"));

        DaemonException early = await Assert.ThrowsAsync<DaemonException>(() => host.Client.UnpauseAsync("web"));
        Assert.Equal(409, early.StatusCode);
        Assert.Contains("not paused", early.Message);

        Assert.Equal("paused", (await host.Client.PauseAsync("web")).State);
        Assert.True(launcher.Factory.Last!.IsPaused);
        DaemonException again = await Assert.ThrowsAsync<DaemonException>(() => host.Client.PauseAsync("web"));
        Assert.Equal(409, again.StatusCode);
        DaemonException shutdown = await Assert.ThrowsAsync<DaemonException>(() => host.Client.ShutdownAsync("web", 1));
        Assert.Equal(409, shutdown.StatusCode);
        Assert.True(launcher.Factory.Last!.IsPaused);

        Assert.Equal("running", (await host.Client.UnpauseAsync("web")).State);
        Assert.False(launcher.Factory.Last!.IsPaused);
    }

    [Fact]
    public async Task UnknownDomainIs404ForEveryVerb()
    {
        await using DaemonTestHost host = await DaemonTestHost.StartAsync();
        Func<Task>[] verbs =
        [
            () => host.Client.GetAsync("ghost"),
            () => host.Client.PauseAsync("ghost"),
            () => host.Client.UnpauseAsync("ghost"),
            () => host.Client.ShutdownAsync("ghost", 1),
            () => host.Client.RebootAsync("ghost", 1),
            () => host.Client.DestroyAsync("ghost"),
            () => host.Client.SetMemoryAsync("ghost", 16),
            () => host.Client.PinVcpuAsync("ghost", "0", "0"),
            () => host.Client.GetScheduleAsync("ghost"),
            () => host.Client.ConsoleHistoryAsync("ghost"),
            () => host.Client.AttachConsoleAsync("ghost"),
        ];

        foreach (Func<Task> verb in verbs)
        {
            DaemonException error = await Assert.ThrowsAsync<DaemonException>(verb);
            Assert.Equal(404, error.StatusCode);
            Assert.Contains("ghost", error.Message);
        }
    }

    [Fact]
    public async Task ShutdownOfAnObedientGuestIsGraceful()
    {
        var launcher = new InProcessVmmLauncher();
        launcher.Factory.ObeysPowerButton = true;
        await using DaemonTestHost host = await DaemonTestHost.StartAsync(launcher);
        await host.Client.CreateAsync(host.Request("web"));

        ShutdownResult result = await host.Client.ShutdownAsync("web", 10);

        Assert.True(result.Graceful);
        Assert.Equal("shutdown", result.Domain.State);
        Assert.Contains("ACPI S5", result.Detail);
        Assert.Equal(1, launcher.Factory.Last!.PowerButtonCount);
        Assert.Null(result.Domain.Pid);
        DaemonException pause = await Assert.ThrowsAsync<DaemonException>(() => host.Client.PauseAsync("web"));
        Assert.Equal(409, pause.StatusCode);
        Assert.Contains("no longer running", pause.Message);
    }

    [Fact]
    public async Task ShutdownOfADeafGuestIsForcedAfterTheTimeoutAndReportedSo()
    {
        var launcher = new InProcessVmmLauncher();
        await using DaemonTestHost host = await DaemonTestHost.StartAsync(launcher);
        await host.Client.CreateAsync(host.Request("web"));

        ShutdownResult result = await host.Client.ShutdownAsync("web", 1);

        Assert.False(result.Graceful);
        Assert.Equal("shutdown", result.Domain.State);
        Assert.Contains("did not react to the ACPI power button within 1 s", result.Detail);
        Assert.Equal(1, launcher.Factory.Last!.PowerButtonCount);
        Assert.Equal("shutdown", (await host.Client.GetAsync("web")).State);
    }

    [Fact]
    public async Task RebootOfAGuestThatResetsBootsAFreshVmmForTheSameDomain()
    {
        var launcher = new InProcessVmmLauncher();
        launcher.Factory.CtrlAltDelReaction = MachineStopReason.Reset;
        await using DaemonTestHost host = await DaemonTestHost.StartAsync(launcher);
        await host.Client.CreateAsync(host.Request("web"));
        DomainInfo before = await host.Client.GetAsync("web");
        FakeDomainMachine first = launcher.Factory.Last!;

        ShutdownResult result = await host.Client.RebootAsync("web", 10);

        Assert.True(result.Graceful, result.Detail);
        Assert.Equal("guest pulsed the i8042 reset line", result.Detail);
        Assert.Equal(("web", before.Id, "running"), (result.Domain.Name, result.Domain.Id, result.Domain.State));
        Assert.Equal(1, first.CtrlAltDelCount);
        Assert.NotSame(first, launcher.Factory.Last);
        Assert.True(launcher.Factory.Last!.IsStarted);
        Assert.Equal(2, launcher.Launches);
        Assert.True(result.Domain.UptimeSeconds < 5);
    }

    [Fact]
    public async Task RebootOfADeafGuestFailsAfterTheTimeoutAndChangesNothing()
    {
        var launcher = new InProcessVmmLauncher();
        await using DaemonTestHost host = await DaemonTestHost.StartAsync(launcher);
        await host.Client.CreateAsync(host.Request("web"));
        DomainInfo before = await host.Client.GetAsync("web");

        DaemonException error = await Assert.ThrowsAsync<DaemonException>(() => host.Client.RebootAsync("web", 1));

        Assert.Equal(409, error.StatusCode);
        Assert.Contains("domain 'web' did not reboot: the guest did not react to Ctrl-Alt-Del within 1 s; it is still running", error.Message);
        DomainInfo after = await host.Client.GetAsync("web");
        Assert.Equal(("running", before.Pid), (after.State, after.Pid));
        Assert.Equal(1, launcher.Factory.Last!.CtrlAltDelCount);
        Assert.Equal(1, launcher.Launches);
    }

    [Fact]
    public async Task ForcedRebootOfADeafGuestResetsItAndBootsAgain()
    {
        var launcher = new InProcessVmmLauncher();
        await using DaemonTestHost host = await DaemonTestHost.StartAsync(launcher);
        await host.Client.CreateAsync(host.Request("web"));
        FakeDomainMachine first = launcher.Factory.Last!;

        ShutdownResult result = await host.Client.RebootAsync("web", 1, force: true);

        Assert.False(result.Graceful);
        Assert.StartsWith("reset by force: the guest did not react to Ctrl-Alt-Del within 1 s", result.Detail);
        Assert.Equal("running", result.Domain.State);
        Assert.True(first.IsDisposed);
        Assert.Equal(2, launcher.Launches);
        Assert.True(launcher.Factory.Last!.IsStarted);
    }

    [Fact]
    public async Task AGuestThatPowersOffOnCtrlAltDelEndsShutDownNotRebooted()
    {
        var launcher = new InProcessVmmLauncher();
        launcher.Factory.CtrlAltDelReaction = MachineStopReason.PowerOff;
        await using DaemonTestHost host = await DaemonTestHost.StartAsync(launcher);
        await host.Client.CreateAsync(host.Request("web"));

        ShutdownResult result = await host.Client.RebootAsync("web", 10);

        Assert.Equal("shutdown", result.Domain.State);
        Assert.Contains("the guest did not reboot", result.Detail);
        Assert.Equal(1, launcher.Launches);
    }

    [Fact]
    public async Task RebootIsRefusedWhilePausedAndItsBodyIsChecked()
    {
        var launcher = new InProcessVmmLauncher();
        launcher.Factory.CtrlAltDelReaction = MachineStopReason.Reset;
        await using DaemonTestHost host = await DaemonTestHost.StartAsync(launcher);
        await host.Client.CreateAsync(host.Request("web"));
        await host.Client.PauseAsync("web");

        DaemonException paused = await Assert.ThrowsAsync<DaemonException>(() => host.Client.RebootAsync("web", 5));
        Assert.Equal(409, paused.StatusCode);
        Assert.Equal(0, launcher.Factory.Last!.CtrlAltDelCount);

        await host.Client.UnpauseAsync("web");
        foreach (string body in new[] { """{"timeout_s": -1}""", """{"force": "yes"}""", """{"timeout_s": 5, "hard": true}""" })
        {
            (HttpStatusCode status, string text) = await PostRawAsync(host, "/domains/web/reboot", body);
            Assert.True(status == HttpStatusCode.BadRequest, $"{body}: {status} {text}");
        }

        Assert.Equal(0, launcher.Factory.Last!.CtrlAltDelCount);
        Assert.Equal("running", (await host.Client.GetAsync("web")).State);
    }

    [Fact]
    public async Task GuestRebootRestartsTheDomain()
    {
        var launcher = new InProcessVmmLauncher();
        await using DaemonTestHost host = await DaemonTestHost.StartAsync(launcher);
        await host.Client.CreateAsync(host.Request("web"));

        launcher.Factory.Last!.Reset("guest requested a reset");

        await Eventually.TrueAsync(() => launcher.Launches == 2 && launcher.Factory.Last!.IsStarted, s_timeout, "the domain is started again");
        await Eventually.TrueAsync(async () => (await host.Client.GetAsync("web")).Pid is not null, s_timeout, "the new VMM is attached");
        Assert.Equal("running", (await host.Client.GetAsync("web")).State);
    }

    [Fact]
    public async Task DestroyRemovesTheDomainAndASecondDestroyIs404()
    {
        await using DaemonTestHost host = await DaemonTestHost.StartAsync();
        await host.Client.CreateAsync(host.Request("web"));
        await host.Client.CreateAsync(host.Request("db"));

        await host.Client.DestroyAsync("web");

        DomainInfo remaining = Assert.Single(await host.Client.ListAsync());
        Assert.Equal("db", remaining.Name);
        Assert.Equal("running", remaining.State);
        Assert.False(Directory.Exists(host.Runtime.Domain(1).Directory));
        DaemonException again = await Assert.ThrowsAsync<DaemonException>(() => host.Client.DestroyAsync("web"));
        Assert.Equal(404, again.StatusCode);
        Assert.Equal("running", (await host.Client.GetAsync("db")).State);
    }

    [Fact]
    public async Task AShutDownDomainCanBeDestroyed()
    {
        await using DaemonTestHost host = await DaemonTestHost.StartAsync();
        await host.Client.CreateAsync(host.Request("web"));
        await host.Client.ShutdownAsync("web", 0);

        await host.Client.DestroyAsync("web");

        Assert.Empty(await host.Client.ListAsync());
    }

    [Fact]
    public async Task AVmmThatDiesMarksItsDomainCrashedAndOthersKeepRunning()
    {
        var launcher = new InProcessVmmLauncher();
        await using DaemonTestHost host = await DaemonTestHost.StartAsync(launcher);
        await host.Client.CreateAsync(host.Request("a"));
        await host.Client.CreateAsync(host.Request("b"));
        await host.Client.CreateAsync(host.Request("c"));

        launcher.Adopt(host.Runtime.Domain(2), 0, null)!.Kill();

        await Eventually.TrueAsync(async () => (await host.Client.GetAsync("b")).State == "crashed", s_timeout, "b is crashed");
        Assert.Contains("exited unexpectedly", (await host.Client.GetAsync("b")).Detail);
        Assert.Equal("running", (await host.Client.GetAsync("a")).State);
        Assert.Equal("running", (await host.Client.GetAsync("c")).State);
        Assert.Equal("paused", (await host.Client.PauseAsync("c")).State);
        DaemonException unpause = await Assert.ThrowsAsync<DaemonException>(() => host.Client.UnpauseAsync("b"));
        Assert.Equal(409, unpause.StatusCode);
    }

    [Fact]
    public async Task AGuestCrashIsReportedWithItsReason()
    {
        var launcher = new InProcessVmmLauncher();
        await using DaemonTestHost host = await DaemonTestHost.StartAsync(launcher);
        await host.Client.CreateAsync(host.Request("web"));

        launcher.Factory.Last!.Crash("vCPU 0 triple-faulted (shutdown)");

        await Eventually.TrueAsync(async () => (await host.Client.GetAsync("web")).State == "crashed", s_timeout, "web is crashed");
        Assert.Contains("triple-faulted", (await host.Client.GetAsync("web")).Detail);
    }

    [Fact]
    public async Task AVmmSocketThatGoesAwayIsA409AndChangesNothing()
    {
        await using DaemonTestHost host = await DaemonTestHost.StartAsync();
        await host.Client.CreateAsync(host.Request("web"));
        File.Delete(host.Runtime.Domain(1).ApiSocket);

        DaemonException error = await Assert.ThrowsAsync<DaemonException>(() => host.Client.PauseAsync("web"));

        Assert.Equal(409, error.StatusCode);
        Assert.Contains("does not answer", error.Message);
        Assert.Equal("running", (await host.Client.GetAsync("web")).State);
    }

    [Fact]
    public async Task AMissingDaemonSocketIsAClearError()
    {
        using var directory = new TempDirectory();
        using var client = new DaemonClient(directory.File("nothing.sock"));

        DaemonException error = await Assert.ThrowsAsync<DaemonException>(() => client.ListAsync());

        Assert.Equal(0, error.StatusCode);
        Assert.Contains("does not answer", error.Message);
    }

    [Fact]
    public async Task ARestartedDaemonFindsItsDomains()
    {
        var launcher = new InProcessVmmLauncher();
        await using DaemonTestHost host = await DaemonTestHost.StartAsync(launcher);
        await host.Client.CreateAsync(host.Request("web"));
        await host.Client.CreateAsync(host.Request("db"));
        await host.Client.CreateAsync(host.Request("gone"));
        await host.Client.PauseAsync("db");

        await host.StopDaemonAsync();
        launcher.Adopt(host.Runtime.Domain(3), 0, null)!.Kill();
        await Task.Delay(200);
        await host.StartDaemonAsync();

        List<DomainInfo> domains = await host.Client.ListAsync();
        Assert.Equal(["web", "db", "gone"], domains.Select(d => d.Name));
        Assert.Equal(["running", "paused", "crashed"], domains.Select(d => d.State));
        Assert.Contains("while the daemon was not running", domains[2].Detail);
        Assert.Equal(3, launcher.Launches);

        // The adopted VMMs answer the new daemon.
        Assert.Equal("running", (await host.Client.UnpauseAsync("db")).State);
        Assert.Equal("paused", (await host.Client.PauseAsync("web")).State);
        DomainInfo next = await host.Client.CreateAsync(host.Request("new"));
        Assert.Equal(4, next.Id);
    }

    [Fact]
    public async Task ConsoleShowsTheBootLogToLateAttachersAndCarriesInput()
    {
        var launcher = new InProcessVmmLauncher();
        await using DaemonTestHost host = await DaemonTestHost.StartAsync(launcher);
        await host.Client.CreateAsync(host.Request("web", bootArgs: "console=ttyS0"));
        launcher.Factory.Last!.SerialWrite("login: ");

        string history = Encoding.UTF8.GetString(await host.Client.ConsoleHistoryAsync("web"));
        Assert.Contains("fake guest web booting: console=ttyS0", history);

        using WebSocket socket = await host.Client.AttachConsoleAsync("web");
        string seen = await ReceiveUntilAsync(socket, "login: ");
        Assert.Contains("booting", seen);

        // The fake machine echoes input, so typed text comes back through the whole path.
        await socket.SendAsync(Encoding.ASCII.GetBytes("root\n"), WebSocketMessageType.Binary, true, CancellationToken.None);
        await ReceiveUntilAsync(socket, "root\n");

        await host.Client.ShutdownAsync("web", 0);
        (WebSocketCloseStatus? status, string? reason) = await ReceiveCloseAsync(socket);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, status);
        Assert.Contains("shutdown", reason);
    }

    [Fact]
    public async Task MemSetInflatesTheBalloon()
    {
        var launcher = new InProcessVmmLauncher();
        await using DaemonTestHost host = await DaemonTestHost.StartAsync(launcher);
        await host.Client.CreateAsync(host.Request("web", memoryMib: 64, balloon: true));
        await host.Client.CreateAsync(host.Request("plain", memoryMib: 64));

        await host.Client.SetMemoryAsync("web", 48);

        Assert.Equal(16, launcher.Factory.Find("web").BalloonTarget);
        Assert.Equal(16, (await host.Client.StatsAsync()).Single(s => s.Name == "web").BalloonTargetMib);
        DaemonException tooBig = await Assert.ThrowsAsync<DaemonException>(() => host.Client.SetMemoryAsync("web", 65));
        Assert.Equal(400, tooBig.StatusCode);
        DaemonException noBalloon = await Assert.ThrowsAsync<DaemonException>(() => host.Client.SetMemoryAsync("plain", 32));
        Assert.Equal(400, noBalloon.StatusCode);
        Assert.Contains("balloon", noBalloon.Message);
    }

    [Fact]
    public async Task MetricsArePrometheusText()
    {
        await using DaemonTestHost host = await DaemonTestHost.StartAsync();
        await host.Client.CreateAsync(host.Request("web", memoryMib: 64));

        string metrics = await host.Client.MetricsAsync();

        Assert.Contains("# TYPE sharpvisor_domain_exits_total counter", metrics);
        Assert.Contains("sharpvisor_domain_exits_total{domain=\"web\",id=\"1\",reason=\"io\"} 10\n", metrics);
        Assert.Contains("sharpvisor_domain_info{domain=\"web\",id=\"1\",state=\"running\"} 1\n", metrics);
        Assert.Contains("sharpvisor_domain_memory_bytes{domain=\"web\",id=\"1\"} 67108864\n", metrics);
        Assert.Contains("sharpvisor_domain_device_bytes_total{domain=\"web\",id=\"1\",device=\"virtio-blk0\",direction=\"read\"} 4096\n", metrics);
        Assert.Matches("sharpvisor_domain_device_bytes_total\\{domain=\"web\",id=\"1\",device=\"serial0\",direction=\"write\"\\} [1-9][0-9]*\n", metrics);
        Assert.Matches("sharpvisor_domain_cpu_seconds_total\\{domain=\"web\",id=\"1\"\\} [0-9.]+\n", metrics);
    }

    [Fact]
    public async Task SchedulingWithoutACpuControllerIsRefusedWithTheReason()
    {
        await using DaemonTestHost host = await DaemonTestHost.StartAsync();
        await host.Client.CreateAsync(host.Request("web"));

        DaemonException error = await Assert.ThrowsAsync<DaemonException>(() => host.Client.SetScheduleAsync("web", new ScheduleRequest { Weight = 512 }));

        Assert.Equal(400, error.StatusCode);
        Assert.Contains("not available", error.Message);
        Assert.Equal(DomainSchedule.DefaultWeight, (await host.Client.GetScheduleAsync("web")).Weight);
    }

    [Theory]
    [InlineData("0", "0-99", "does not exist")]
    [InlineData("0", "x", "not like")]
    [InlineData("5", "0", "vCPU '5' does not exist")]
    [InlineData("-1", "0", "does not exist")]
    public async Task BadVcpuPinsAreRefused(string vcpu, string cpus, string expectedInMessage)
    {
        await using DaemonTestHost host = await DaemonTestHost.StartAsync();
        await host.Client.CreateAsync(host.Request("web", vcpus: 2));

        DaemonException error = await Assert.ThrowsAsync<DaemonException>(() => host.Client.PinVcpuAsync("web", vcpu, cpus));

        Assert.Equal(400, error.StatusCode);
        Assert.Contains(expectedInMessage, error.Message);
    }

    [Fact]
    public async Task ShutdownTimeoutOutOfRangeIsRefused()
    {
        await using DaemonTestHost host = await DaemonTestHost.StartAsync();
        await host.Client.CreateAsync(host.Request("web"));

        DaemonException error = await Assert.ThrowsAsync<DaemonException>(() => host.Client.ShutdownAsync("web", -1));

        Assert.Equal(400, error.StatusCode);
        Assert.Equal("running", (await host.Client.GetAsync("web")).State);
    }

    [Fact]
    public async Task UnknownEndpointIsA404WithAFaultMessage()
    {
        await using DaemonTestHost host = await DaemonTestHost.StartAsync();

        (HttpStatusCode code, string message) = await PostRawAsync(host, "/frobnicate", "{}");

        Assert.Equal(HttpStatusCode.NotFound, code);
        Assert.Contains("no such endpoint", message);
    }

    private static async Task<(HttpStatusCode, string)> PostRawAsync(DaemonTestHost host, string path, string body)
    {
        using HttpClient http = UnixSocketHttp.CreateClient(host.Runtime.DaemonSocket);
        using HttpResponseMessage response = await http.PostAsync(path, new StringContent(body, Encoding.UTF8, "application/json"));
        return (response.StatusCode, ApiResults.ReadFaultMessage(await response.Content.ReadAsStringAsync()));
    }

    internal static async Task<string> ReceiveUntilAsync(WebSocket socket, string expected, TimeSpan? timeout = null)
    {
        var text = new StringBuilder();
        byte[] buffer = new byte[16 * 1024];
        using var cancel = new CancellationTokenSource(timeout ?? s_timeout);
        while (!text.ToString().Contains(expected))
        {
            WebSocketReceiveResult result = await socket.ReceiveAsync(buffer, cancel.Token);
            Assert.True(result.MessageType != WebSocketMessageType.Close, $"console closed before '{expected}' arrived; got: {text}");
            text.Append(Encoding.UTF8.GetString(buffer, 0, result.Count));
        }

        return text.ToString();
    }

    internal static async Task<(WebSocketCloseStatus?, string?)> ReceiveCloseAsync(WebSocket socket)
    {
        byte[] buffer = new byte[16 * 1024];
        using var cancel = new CancellationTokenSource(s_timeout);
        while (true)
        {
            WebSocketReceiveResult result = await socket.ReceiveAsync(buffer, cancel.Token);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                return (result.CloseStatus, result.CloseStatusDescription);
            }
        }
    }
}
