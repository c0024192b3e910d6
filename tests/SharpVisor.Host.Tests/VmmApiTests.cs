using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using SharpVisor.Host.Firecracker;
using SharpVisor.Host.Tests.Fakes;
using SharpVisor.Machine;

namespace SharpVisor.Host.Tests;

public sealed class VmmApiTests
{
    [Fact]
    public async Task DescribesAnInstanceThatIsNotStarted()
    {
        await using VmmTestServer vmm = await VmmTestServer.StartAsync();

        VmmTestServer.Response response = await vmm.GetAsync("/");

        Assert.Equal(HttpStatusCode.OK, response.Status);
        using JsonDocument info = JsonDocument.Parse(response.Body);
        Assert.Equal("sharpvisor", info.RootElement.GetProperty("app_name").GetString());
        Assert.Equal("test-vm", info.RootElement.GetProperty("id").GetString());
        Assert.Equal("Not started", info.RootElement.GetProperty("state").GetString());
    }

    [Fact]
    public async Task MachineConfigDefaultsToFirecrackersAndTakesAPut()
    {
        await using VmmTestServer vmm = await VmmTestServer.StartAsync();

        using (JsonDocument config = JsonDocument.Parse((await vmm.GetAsync("/machine-config")).Body))
        {
            Assert.Equal(1, config.RootElement.GetProperty("vcpu_count").GetInt32());
            Assert.Equal(128, config.RootElement.GetProperty("mem_size_mib").GetInt32());
        }

        Assert.Equal(HttpStatusCode.NoContent, (await vmm.PutAsync("/machine-config", """{"vcpu_count": 2, "mem_size_mib": 256}""")).Status);
        Assert.Equal(HttpStatusCode.NoContent, (await vmm.PatchAsync("/machine-config", """{"mem_size_mib": 64}""")).Status);

        using JsonDocument updated = JsonDocument.Parse((await vmm.GetAsync("/machine-config")).Body);
        Assert.Equal(2, updated.RootElement.GetProperty("vcpu_count").GetInt32());
        Assert.Equal(64, updated.RootElement.GetProperty("mem_size_mib").GetInt32());
    }

    [Theory]
    [InlineData("/machine-config", """{"vcpu_count": 1, "mem_size_mib": 64, "warp_drive": true}""",
        "An error occurred when deserializing the json body of a request: unknown field `warp_drive`, expected one of `vcpu_count`, `mem_size_mib`, `smt`, `cpu_template`, `track_dirty_pages`, `huge_pages` at line 1")]
    [InlineData("/boot-source", """{"boot_args": "console=ttyS0"}""",
        "An error occurred when deserializing the json body of a request: missing field `kernel_image_path` at line 1")]
    [InlineData("/vsock", """{"guest_cid": "three", "uds_path": "/tmp/v.sock"}""",
        "An error occurred when deserializing the json body of a request: invalid type: value at guest_cid, expected i64 at line 1")]
    [InlineData("/drives/rootfs", """{"drive_id": "rootfs", "is_root_device": false, "rate_limiter": {"ops": {"size": 1, "refill_time": 1, "x": 2}}}""",
        "An error occurred when deserializing the json body of a request: unknown field `x`, expected one of `size`, `one_time_burst`, `refill_time` at line 1")]
    public async Task BadBodiesAreAnsweredInFirecrackersWords(string path, string body, string expected)
    {
        await using VmmTestServer vmm = await VmmTestServer.StartAsync();
        VmmTestServer.Response response = await vmm.PutAsync(path, body);
        Assert.Equal(HttpStatusCode.BadRequest, response.Status);
        Assert.StartsWith(expected, response.FaultMessage);
        Assert.EndsWith(".", response.FaultMessage);
    }

    [Theory]
    [InlineData("""{"vcpu_count": 2, "mem_size_mib": 256""", "deserializing the json body")]
    [InlineData("""{"vcpu_count": 2, "mem_size_mib": 256, "turbo": true}""", "turbo")]
    [InlineData("""{"vcpu_count": 2}""", "mem_size_mib")]
    [InlineData("""{"vcpu_count": "two", "mem_size_mib": 256}""", "vcpu_count")]
    [InlineData("""{"vcpu_count": 0, "mem_size_mib": 256}""", "out of range")]
    [InlineData("""{"vcpu_count": 33, "mem_size_mib": 256}""", "out of range")]
    [InlineData("""{"vcpu_count": 1, "mem_size_mib": 1}""", "out of range")]
    [InlineData("""{"vcpu_count": 1, "mem_size_mib": 99999999999}""", "out of range")]
    [InlineData("""{"vcpu_count": 1, "vcpu_count": 2, "mem_size_mib": 256}""", "vcpu_count")]
    [InlineData("""{"vcpu_count": 2, "mem_size_mib": 256, "cpu_template": "T2"}""", "cpu_template")]
    [InlineData("""{"vcpu_count": 2, "mem_size_mib": 256, "smt": true}""", "smt")]
    [InlineData("null", "null")]
    [InlineData("", "JSON body")]
    public async Task BadMachineConfigIsRefusedWith400AndChangesNothing(string body, string expectedInMessage)
    {
        await using VmmTestServer vmm = await VmmTestServer.StartAsync();

        VmmTestServer.Response response = await vmm.PutAsync("/machine-config", body);

        Assert.Equal(HttpStatusCode.BadRequest, response.Status);
        Assert.Contains(expectedInMessage, response.FaultMessage, StringComparison.OrdinalIgnoreCase);
        using JsonDocument config = JsonDocument.Parse((await vmm.GetAsync("/machine-config")).Body);
        Assert.Equal(1, config.RootElement.GetProperty("vcpu_count").GetInt32());
        Assert.Equal(128, config.RootElement.GetProperty("mem_size_mib").GetInt32());
    }

    [Fact]
    public async Task UnknownPathsAndMethodsAreRefusedWithAFaultMessage()
    {
        await using VmmTestServer vmm = await VmmTestServer.StartAsync();

        VmmTestServer.Response unknown = await vmm.PutAsync("/snapshots/make", """{"mem_file_path": "/m", "snapshot_path": "/s"}""");
        VmmTestServer.Response unsupported = await vmm.PutAsync("/cpu-config", """{"kvm_capabilities": ["56"]}""");
        VmmTestServer.Response wrongMethod = await vmm.SendAsync(HttpMethod.Delete, "/boot-source", null);

        Assert.Equal(HttpStatusCode.BadRequest, unknown.Status);
        Assert.Contains("Invalid request method and/or path: PUT /snapshots/make", unknown.FaultMessage);
        Assert.Equal(HttpStatusCode.BadRequest, unsupported.Status);
        Assert.StartsWith("kvm_capabilities cannot be required or dropped in SharpVisor", unsupported.FaultMessage);
        Assert.Equal(HttpStatusCode.BadRequest, wrongMethod.Status);
        Assert.Contains("Invalid request method and/or path: DELETE /boot-source", wrongMethod.FaultMessage);
    }

    [Fact]
    public async Task OversizedBodyIsRefusedWith413()
    {
        await using VmmTestServer vmm = await VmmTestServer.StartAsync();
        string huge = $$"""{"kernel_image_path": "{{vmm.Kernel}}", "boot_args": "{{new string('x', 60_000)}}"}""";

        VmmTestServer.Response response = await vmm.PutAsync("/boot-source", huge);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.Status);
        Assert.Contains("limit", response.FaultMessage);
        using JsonDocument config = JsonDocument.Parse((await vmm.GetAsync("/vm/config")).Body);
        Assert.False(config.RootElement.TryGetProperty("boot-source", out _));
    }

    [Fact]
    public async Task BootSourceNeedsAnExistingAbsoluteKernel()
    {
        await using VmmTestServer vmm = await VmmTestServer.StartAsync();

        VmmTestServer.Response missing = await vmm.PutAsync("/boot-source", """{"kernel_image_path": "/nonexistent/vmlinux"}""");
        VmmTestServer.Response relative = await vmm.PutAsync("/boot-source", """{"kernel_image_path": "vmlinux"}""");
        VmmTestServer.Response wrongType = await vmm.PutAsync("/boot-source", """{"kernel_image_path": 42}""");

        Assert.Equal(HttpStatusCode.BadRequest, missing.Status);
        Assert.Contains("does not exist", missing.FaultMessage);
        Assert.Equal(HttpStatusCode.BadRequest, relative.Status);
        Assert.Contains("absolute", relative.FaultMessage);
        Assert.Equal(HttpStatusCode.BadRequest, wrongType.Status);
    }

    [Fact]
    public async Task InstanceStartWithoutBootSourceIsRefused()
    {
        await using VmmTestServer vmm = await VmmTestServer.StartAsync();

        VmmTestServer.Response response = await vmm.PutAsync("/actions", """{"action_type": "InstanceStart"}""");

        Assert.Equal(HttpStatusCode.BadRequest, response.Status);
        Assert.Contains("boot source", response.FaultMessage);
        Assert.Null(vmm.Factory.Last);
    }

    [Fact]
    public async Task UnknownActionIsRefused()
    {
        await using VmmTestServer vmm = await VmmTestServer.StartAsync();

        VmmTestServer.Response response = await vmm.PutAsync("/actions", """{"action_type": "Explode"}""");

        Assert.Equal(HttpStatusCode.BadRequest, response.Status);
        Assert.Contains("Explode", response.FaultMessage);
    }

    [Fact]
    public async Task InstanceStartBuildsTheConfiguredMachineAndLocksTheConfiguration()
    {
        await using VmmTestServer vmm = await VmmTestServer.StartAsync();
        string disk = vmm.Directory.CreateFile("rootfs.ext4");
        Assert.Equal(HttpStatusCode.NoContent, (await vmm.PutAsync("/machine-config", """{"vcpu_count": 2, "mem_size_mib": 64}""")).Status);
        Assert.Equal(HttpStatusCode.NoContent, (await vmm.PutAsync("/drives/rootfs", $$"""{"drive_id": "rootfs", "path_on_host": "{{disk}}", "is_root_device": true, "is_read_only": false}""")).Status);
        Assert.Equal(HttpStatusCode.NoContent, (await vmm.PutAsync("/network-interfaces/eth0", """{"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "06:00:ac:10:00:02"}""")).Status);

        await vmm.StartMachineAsync();

        FakeDomainMachine machine = Assert.IsType<FakeDomainMachine>(vmm.Factory.Last);
        Assert.True(machine.IsStarted);
        Assert.Equal(2, machine.Spec.VcpuCount);
        Assert.Equal(64UL << 20, machine.Spec.MemorySize);
        Assert.Equal("console=ttyS0 root=/dev/vda rw", machine.Spec.CommandLine);
        Assert.Equal(disk, Assert.Single(machine.Spec.Disks).Path);
        Assert.Equal("tap0", Assert.Single(machine.Spec.NetworkInterfaces).TapName);
        using (JsonDocument info = JsonDocument.Parse((await vmm.GetAsync("/")).Body))
        {
            Assert.Equal("Running", info.RootElement.GetProperty("state").GetString());
        }

        VmmTestServer.Response late = await vmm.PutAsync("/machine-config", """{"vcpu_count": 4, "mem_size_mib": 64}""");
        Assert.Equal(HttpStatusCode.BadRequest, late.Status);
        Assert.Contains("after starting", late.FaultMessage);
        Assert.Equal(HttpStatusCode.BadRequest, (await vmm.PutAsync("/actions", """{"action_type": "InstanceStart"}""")).Status);
        Assert.Equal(2, JsonDocument.Parse((await vmm.GetAsync("/machine-config")).Body).RootElement.GetProperty("vcpu_count").GetInt32());
    }

    [Fact]
    public async Task AFailedInstanceStartIsA400AndLeavesTheVmNotStarted()
    {
        await using VmmTestServer vmm = await VmmTestServer.StartAsync();
        vmm.Factory.RefuseWith = "not a bzImage, ELF or Multiboot kernel";
        Assert.Equal(HttpStatusCode.NoContent, (await vmm.PutAsync("/boot-source", $$"""{"kernel_image_path": "{{vmm.Kernel}}"}""")).Status);

        VmmTestServer.Response response = await vmm.PutAsync("/actions", """{"action_type": "InstanceStart"}""");

        Assert.Equal(HttpStatusCode.BadRequest, response.Status);
        Assert.Contains("not a bzImage", response.FaultMessage);
        Assert.Equal(VmmState.NotStarted, vmm.Server.Controller.State);
    }

    [Theory]
    [InlineData("/drives/rootfs", """{"drive_id": "other", "path_on_host": "PATH", "is_root_device": false}""", "does not match")]
    [InlineData("/drives/bad-id!", """{"drive_id": "bad-id!", "path_on_host": "PATH", "is_root_device": false}""", "invalid")]
    [InlineData("/drives/rootfs", """{"drive_id": "rootfs", "path_on_host": "/nonexistent.img", "is_root_device": false}""", "does not exist")]
    [InlineData("/drives/rootfs", """{"drive_id": "rootfs", "is_root_device": false}""", "path_on_host")]
    [InlineData("/drives/rootfs", """{"drive_id": "rootfs", "path_on_host": "PATH", "is_root_device": false, "io_engine": "Async"}""", "io_engine")]
    [InlineData("/drives/rootfs", """{"drive_id": "rootfs", "path_on_host": "PATH", "is_root_device": false, "rate_limiter": {"ops": {"size": -1, "refill_time": 1}}}""", "rate_limiter.ops")]
    [InlineData("/network-interfaces/eth0", """{"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "zz:00"}""", "guest_mac")]
    [InlineData("/network-interfaces/eth0", """{"iface_id": "eth0", "host_dev_name": "a-name-longer-than-15"}""", "host_dev_name")]
    [InlineData("/network-interfaces/eth0", """{"iface_id": "eth0", "host_dev_name": "tap0", "mtu": 20}""", "mtu")]
    [InlineData("/network-interfaces/eth0", """{"iface_id": "eth1", "host_dev_name": "tap0"}""", "does not match")]
    [InlineData("/balloon", """{"amount_mib": 4096, "deflate_on_oom": true}""", "amount_mib")]
    [InlineData("/balloon", """{"amount_mib": -1, "deflate_on_oom": true}""", "amount_mib")]
    [InlineData("/balloon", """{"amount_mib": 16}""", "deflate_on_oom")]
    public async Task BadDeviceRequestsAreRefusedWith400AndChangeNothing(string path, string body, string expectedInMessage)
    {
        await using VmmTestServer vmm = await VmmTestServer.StartAsync();
        string disk = vmm.Directory.CreateFile("disk.img");

        VmmTestServer.Response response = await vmm.PutAsync(path, body.Replace("PATH", disk));

        Assert.Equal(HttpStatusCode.BadRequest, response.Status);
        Assert.Contains(expectedInMessage, response.FaultMessage);
        using JsonDocument config = JsonDocument.Parse((await vmm.GetAsync("/vm/config")).Body);
        Assert.Equal(0, config.RootElement.GetProperty("drives").GetArrayLength());
        Assert.Equal(0, config.RootElement.GetProperty("network-interfaces").GetArrayLength());
        Assert.False(config.RootElement.TryGetProperty("balloon", out _));
    }

    [Fact]
    public async Task OnlyOneDriveCanBeTheRootDevice()
    {
        await using VmmTestServer vmm = await VmmTestServer.StartAsync();
        string disk = vmm.Directory.CreateFile("disk.img");
        Assert.Equal(HttpStatusCode.NoContent, (await vmm.PutAsync("/drives/a", $$"""{"drive_id": "a", "path_on_host": "{{disk}}", "is_root_device": true}""")).Status);

        VmmTestServer.Response second = await vmm.PutAsync("/drives/b", $$"""{"drive_id": "b", "path_on_host": "{{disk}}", "is_root_device": true}""");

        Assert.Equal(HttpStatusCode.BadRequest, second.Status);
        Assert.Contains("root device", second.FaultMessage);
    }

    [Fact]
    public async Task PauseAndResumeDriveTheMachine()
    {
        await using VmmTestServer vmm = await VmmTestServer.StartAsync();
        Assert.Equal(HttpStatusCode.BadRequest, (await vmm.PatchAsync("/vm", """{"state": "Paused"}""")).Status);
        await vmm.StartMachineAsync();
        FakeDomainMachine machine = vmm.Factory.Last!;

        Assert.Equal(HttpStatusCode.NoContent, (await vmm.PatchAsync("/vm", """{"state": "Paused"}""")).Status);
        Assert.True(machine.IsPaused);
        Assert.Equal("Paused", JsonDocument.Parse((await vmm.GetAsync("/")).Body).RootElement.GetProperty("state").GetString());
        Assert.Equal(VmmState.Paused, VmmStateFile.TryRead(vmm.Options.StateFilePath!)!.State);

        Assert.Equal(HttpStatusCode.BadRequest, (await vmm.PatchAsync("/vm", """{"state": "Frozen"}""")).Status);
        Assert.True(machine.IsPaused);

        Assert.Equal(HttpStatusCode.NoContent, (await vmm.PatchAsync("/vm", """{"state": "Resumed"}""")).Status);
        Assert.False(machine.IsPaused);
        Assert.Equal(VmmState.Running, VmmStateFile.TryRead(vmm.Options.StateFilePath!)!.State);
    }

    [Fact]
    public async Task SendCtrlAltDelReachesTheMachineOnlyWhenRunning()
    {
        await using VmmTestServer vmm = await VmmTestServer.StartAsync();
        Assert.Equal(HttpStatusCode.BadRequest, (await vmm.PutAsync("/actions", """{"action_type": "SendCtrlAltDel"}""")).Status);
        await vmm.StartMachineAsync();

        Assert.Equal(HttpStatusCode.NoContent, (await vmm.PutAsync("/actions", """{"action_type": "SendCtrlAltDel"}""")).Status);

        Assert.Equal(1, vmm.Factory.Last!.CtrlAltDelCount);
    }

    [Fact]
    public async Task SendCtrlAltDelRefusedByTheGuestsKeyboardIs400AndSaysWhy()
    {
        await using VmmTestServer vmm = await VmmTestServer.StartAsync();
        await vmm.StartMachineAsync();
        vmm.Factory.Last!.KeyboardRefusal = "the guest's keyboard did not take Ctrl-Alt-Del: the guest has disabled it";

        VmmTestServer.Response response = await vmm.PutAsync("/actions", """{"action_type": "SendCtrlAltDel"}""");

        Assert.Equal(HttpStatusCode.BadRequest, response.Status);
        Assert.Contains("the guest has disabled it", JsonDocument.Parse(response.Body).RootElement.GetProperty("fault_message").GetString());
        Assert.Equal(VmmState.Running, vmm.Server.Controller.State);
    }

    [Fact]
    public async Task SendCtrlAltDelToAPausedMachineIsRefused()
    {
        await using VmmTestServer vmm = await VmmTestServer.StartAsync();
        await vmm.StartMachineAsync();
        await vmm.PatchAsync("/vm", """{"state": "Paused"}""");

        Assert.Equal(HttpStatusCode.BadRequest, (await vmm.PutAsync("/actions", """{"action_type": "SendCtrlAltDel"}""")).Status);

        Assert.Equal(0, vmm.Factory.Last!.CtrlAltDelCount);
    }

    [Fact]
    public async Task AGuestThatResetsOnCtrlAltDelStopsTheVmmAsReset()
    {
        var factory = new FakeDomainMachineFactory { CtrlAltDelReaction = MachineStopReason.Reset };
        await using VmmTestServer vmm = await VmmTestServer.StartAsync(factory: factory);
        await vmm.StartMachineAsync();
        Task<int> run = vmm.Server.RunAsync(CancellationToken.None);

        Assert.Equal(HttpStatusCode.NoContent, (await vmm.PutAsync("/actions", """{"action_type": "SendCtrlAltDel"}""")).Status);

        // As Firecracker: the guest's reset ends the VMM (status 0); whoever supervises it boots a new one.
        Assert.Equal(0, await run.WaitAsync(TimeSpan.FromSeconds(10)));
        VmmStatus status = VmmStateFile.TryRead(vmm.Options.StateFilePath!)!;
        Assert.Equal(MachineStopReason.Reset, status.Stop!.Reason);
    }

    [Fact]
    public async Task BalloonTargetCanBePatchedAfterBootAndShowsInCounters()
    {
        await using VmmTestServer vmm = await VmmTestServer.StartAsync();
        Assert.Equal(HttpStatusCode.BadRequest, (await vmm.PatchAsync("/balloon", """{"amount_mib": 16}""")).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await vmm.GetAsync("/balloon")).Status);
        Assert.Equal(HttpStatusCode.NoContent, (await vmm.PutAsync("/balloon", """{"amount_mib": 0, "deflate_on_oom": true}""")).Status);
        await vmm.StartMachineAsync();

        Assert.Equal(HttpStatusCode.NoContent, (await vmm.PatchAsync("/balloon", """{"amount_mib": 32}""")).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await vmm.PatchAsync("/balloon", """{"amount_mib": 129}""")).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await vmm.PutAsync("/balloon", """{"amount_mib": 8, "deflate_on_oom": true}""")).Status);

        Assert.Equal(32, vmm.Factory.Last!.BalloonTarget);
        Assert.Equal(32, JsonDocument.Parse((await vmm.GetAsync("/balloon")).Body).RootElement.GetProperty("amount_mib").GetInt32());
        using JsonDocument counters = JsonDocument.Parse((await vmm.GetAsync("/sharpvisor/counters")).Body);
        Assert.Equal(32, counters.RootElement.GetProperty("balloon_target_mib").GetInt32());
        Assert.Equal(10, counters.RootElement.GetProperty("exits").GetProperty("io").GetInt32());
    }

    [Fact]
    public async Task BalloonStatisticsAreServedOnlyWhenEnabledBeforeBoot()
    {
        await using VmmTestServer vmm = await VmmTestServer.StartAsync();
        Assert.Equal(HttpStatusCode.BadRequest, (await vmm.GetAsync("/balloon/statistics")).Status);
        Assert.Equal(HttpStatusCode.NoContent, (await vmm.PutAsync("/balloon", """{"amount_mib": 16, "deflate_on_oom": false, "stats_polling_interval_s": 1}""")).Status);
        VmmTestServer.Response early = await vmm.GetAsync("/balloon/statistics");
        Assert.Equal(HttpStatusCode.BadRequest, early.Status);
        Assert.Contains("before starting", early.Body);
        await vmm.StartMachineAsync();
        Assert.Equal(16, vmm.Factory.Last!.Spec.Balloon?.InitialTargetMib);
        Assert.Equal((false, 1), (vmm.Factory.Last!.Spec.Balloon!.DeflateOnOom, vmm.Factory.Last!.Spec.Balloon!.StatisticsIntervalSeconds));

        using JsonDocument stats = JsonDocument.Parse((await vmm.GetAsync("/balloon/statistics")).Body);
        Assert.Equal(16 * 256, stats.RootElement.GetProperty("target_pages").GetInt64());
        Assert.Equal(16, stats.RootElement.GetProperty("actual_mib").GetInt64());
        Assert.Equal(100L << 20, stats.RootElement.GetProperty("free_memory").GetInt64());
        Assert.False(stats.RootElement.TryGetProperty("swap_in", out _)); // the guest did not report it

        Assert.Equal(HttpStatusCode.NoContent, (await vmm.PatchAsync("/balloon/statistics", """{"stats_polling_interval_s": 3}""")).Status);
        Assert.Equal(3, vmm.Factory.Last!.BalloonStatisticsInterval);
        Assert.Equal(3, JsonDocument.Parse((await vmm.GetAsync("/balloon")).Body).RootElement.GetProperty("stats_polling_interval_s").GetInt32());
        VmmTestServer.Response off = await vmm.PatchAsync("/balloon/statistics", """{"stats_polling_interval_s": 0}""");
        Assert.Equal(HttpStatusCode.BadRequest, off.Status);
        Assert.Contains("cannot be enabled or disabled after boot", off.Body);
    }

    [Fact]
    public async Task PowerOffStopsTheMachineAndRunReturnsItsStatus()
    {
        await using VmmTestServer vmm = await VmmTestServer.StartAsync();
        await vmm.StartMachineAsync();
        Task<int> run = vmm.Server.RunAsync(CancellationToken.None);

        Assert.Equal(HttpStatusCode.NoContent, (await vmm.PutAsync("/sharpvisor/power", """{"action": "PowerOff", "reason": "destroyed by test"}""")).Status);

        Assert.Equal(0, await run.WaitAsync(TimeSpan.FromSeconds(10)));
        VmmStatus status = VmmStateFile.TryRead(vmm.Options.StateFilePath!)!;
        Assert.Equal(VmmState.Stopped, status.State);
        Assert.Equal(MachineStopReason.PowerOff, status.Stop!.Reason);
        Assert.Equal("destroyed by test", status.Stop.Detail);
        Assert.Equal(HttpStatusCode.BadRequest, (await vmm.PatchAsync("/vm", """{"state": "Paused"}""")).Status);
    }

    [Fact]
    public async Task PowerButtonIsPressedOnTheMachine()
    {
        var factory = new FakeDomainMachineFactory { ObeysPowerButton = true };
        await using VmmTestServer vmm = await VmmTestServer.StartAsync(factory: factory);
        await vmm.StartMachineAsync();

        Assert.Equal(HttpStatusCode.NoContent, (await vmm.PutAsync("/sharpvisor/power", """{"action": "PowerButton"}""")).Status);

        DomainStopInfoAssert.PoweredOff(await vmm.Server.Controller.Stopped.WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Equal(1, factory.Last!.PowerButtonCount);
    }

    [Fact]
    public async Task ConfigFileConfiguresAndStartsTheMachine()
    {
        await using VmmTestServer vmm = await VmmTestServer.StartAsync(dir =>
        {
            string kernel = dir.CreateFile("kernel.elf");
            string path = dir.File("vm.json");
            File.WriteAllText(path, $$"""
                {
                  "boot-source": {"kernel_image_path": "{{kernel}}", "boot_args": "loop"},
                  "machine-config": {"vcpu_count": 1, "mem_size_mib": 16}
                }
                """);
            return path;
        });

        FakeDomainMachine machine = Assert.IsType<FakeDomainMachine>(vmm.Factory.Last);
        Assert.True(machine.IsStarted);
        Assert.Equal("loop", machine.Spec.CommandLine);
        Assert.Equal(16UL << 20, machine.Spec.MemorySize);
        Assert.Equal("Running", JsonDocument.Parse((await vmm.GetAsync("/")).Body).RootElement.GetProperty("state").GetString());
    }

    [Theory]
    [InlineData("""{"boot-source": {"kernel_image_path": "KERNEL"}, "vsock": {"guest_cid": 1, "uds_path": "/tmp/v"}}""", "guest_cid 1")]
    [InlineData("""{"boot-source": {"kernel_image_path": "KERNEL"}, "machine-config": {"vcpu_count": 64, "mem_size_mib": 16}}""", "vcpu_count")]
    [InlineData("""{"boot-source": {"kernel_image_path": "KERNEL"}, "bogus": 1}""", "bogus")]
    [InlineData("""{"machine-config": {"vcpu_count": 1, "mem_size_mib": 16}}""", "boot source")]
    public async Task BadConfigFileIsRefusedAndNothingListens(string json, string expectedInMessage)
    {
        using var dir = new TempDirectory();
        string kernel = dir.CreateFile("kernel.elf");
        string path = dir.File("vm.json");
        File.WriteAllText(path, json.Replace("KERNEL", kernel));
        var options = new VmmServerOptions { ApiSocketPath = dir.File("api.sock"), ConfigFile = path };

        var error = await Assert.ThrowsAsync<SharpVisor.Host.Http.ApiException>(() => VmmServer.StartAsync(options, new FakeDomainMachineFactory()));

        Assert.Contains(expectedInMessage, error.Message);
        Assert.False(SharpVisor.Host.Http.UnixSocketFiles.IsListening(options.ApiSocketPath));
    }

    [Fact]
    public async Task ConsoleSocketReplaysHistoryAndCarriesInput()
    {
        await using VmmTestServer vmm = await VmmTestServer.StartAsync();
        await vmm.StartMachineAsync();
        vmm.Factory.Last!.SerialWrite("boot log line\n");

        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(vmm.Options.EffectiveConsoleSocketPath));
        string history = await ReceiveUntilAsync(socket, "boot log line\n");
        Assert.Contains("fake guest test-vm booting", history);

        // The fake machine echoes console input back on its serial output.
        await socket.SendAsync(Encoding.ASCII.GetBytes("typed\n"));
        await ReceiveUntilAsync(socket, "typed\n");
    }

    [Fact]
    public async Task SocketInUseIsRefused()
    {
        await using VmmTestServer vmm = await VmmTestServer.StartAsync();
        var options = new VmmServerOptions { ApiSocketPath = vmm.Options.ApiSocketPath, ConsoleSocketPath = vmm.Directory.File("other.console") };

        var error = await Assert.ThrowsAsync<SharpVisor.Host.Http.ApiException>(() => VmmServer.StartAsync(options, new FakeDomainMachineFactory()));

        Assert.Contains("in use", error.Message);
        Assert.Equal(HttpStatusCode.OK, (await vmm.GetAsync("/")).Status);
    }

    internal static async Task<string> ReceiveUntilAsync(Socket socket, string expected)
    {
        var text = new StringBuilder();
        byte[] buffer = new byte[4096];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (!text.ToString().Contains(expected))
        {
            int read = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
            Assert.True(read > 0, $"console closed before '{expected}' arrived; got: {text}");
            text.Append(Encoding.UTF8.GetString(buffer, 0, read));
        }

        return text.ToString();
    }
}
