using System.Diagnostics;
using System.Net;
using System.Text;
using SharpVisor.Host.Firecracker;
using SharpVisor.Host.Http;
using SharpVisor.TestSupport;

namespace SharpVisor.Host.Tests;

/// <summary>
/// out/firecracker, the NativeAOT front end: it serves the pre-boot API without the JIT runtime,
/// then at InstanceStart execs the JIT VMM in the same process, which answers the pending request
/// and keeps serving the API on the same socket with the configuration the front end accepted.
/// </summary>
public sealed class FirecrackerFrontEndTests
{
    [Fact]
    public async Task TheFrontEndHandsOverToTheJitVmmAtInstanceStartInTheSameProcess()
    {
        using var directory = new TempDirectory();
        string socket = directory.File("fc.sock");
        string root = directory.File("root.img");
        string swapped = directory.File("swapped.img");
        string metrics = directory.File("fc.metrics");
        File.WriteAllBytes(root, new byte[1 << 20]);
        File.WriteAllBytes(swapped, new byte[2 << 20]);
        File.WriteAllText(metrics, "");

        await using var firecracker = FirecrackerProcess.Start(["--api-sock", socket, "--id", "fc-front", "--metrics-path", metrics]);
        try
        {
            await firecracker.WaitForApiAsync(socket, TimeSpan.FromSeconds(30));
            int pid = firecracker.Id;
            Assert.False(LoadsJitRuntime(pid), "the front end has no JIT runtime (libcoreclr, libclrjit) before InstanceStart");

            // One pooled client: InstanceStart goes on the connection the earlier requests used.
            using HttpClient client = UnixSocketHttp.CreateClient(socket, TimeSpan.FromSeconds(120));
            await Put(client, "/machine-config", """{"vcpu_count": 1, "mem_size_mib": 16}""");
            await Put(client, "/boot-source", $$"""{"kernel_image_path": "{{TestKernels.MultibootHello}}", "boot_args": "loop=20000"}""");
            await Put(client, "/drives/root", $$"""{"drive_id": "root", "path_on_host": "{{root}}", "is_root_device": true, "is_read_only": false}""");
            await Put(client, "/mmds", """{"latest": {"meta-data": {"instance-id": "i-front"}}}""");
            await Put(client, "/entropy", "{}");
            string configBefore = await client.GetStringAsync("/vm/config");
            using (HttpResponseMessage refused = await client.PutAsync("/vsock", Json("""{"guest_cid": 2, "uds_path": "/tmp/v.sock"}""")))
            {
                Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            }

            Assert.False(LoadsJitRuntime(pid), "configuring did not load the JIT runtime either");

            await Put(client, "/actions", """{"action_type": "InstanceStart"}""");

            Assert.False(firecracker.HasExited, "the process lives on after the handover");
            Assert.True(LoadsJitRuntime(pid), $"process {pid} runs the JIT VMM after InstanceStart");
            Assert.Contains("\"state\":\"Running\"", await client.GetStringAsync("/"));
            Assert.Equal(configBefore, await client.GetStringAsync("/vm/config"));
            Assert.Equal("""{"latest":{"meta-data":{"instance-id":"i-front"}}}""", await client.GetStringAsync("/mmds"));
            await firecracker.WaitForLineAsync("Hello from a multiboot kernel", TimeSpan.FromSeconds(120));

            // The running machine takes changes through the inherited socket, on new connections too.
            using HttpClient fresh = UnixSocketHttp.CreateClient(socket, TimeSpan.FromSeconds(60), pooled: false);
            await Put(fresh, "/drives/root", $$"""{"drive_id": "root", "path_on_host": "{{swapped}}"}""", "PATCH");
            Assert.Contains(swapped, await fresh.GetStringAsync("/vm/config"));

            // The front end's request counts reach the JIT VMM's metrics.
            await Put(fresh, "/actions", """{"action_type": "FlushMetrics"}""");
            string line = File.ReadAllLines(metrics).Last();
            Assert.Contains("\"boot_source_count\":1", line);
            Assert.Contains("\"vsock_fails\":1", line);
            Assert.Contains("\"actions_count\":1", line);

            await Put(fresh, "/sharpvisor/power", """{"action": "PowerOff"}""");
            Assert.True(await firecracker.ExitsWithinAsync(TimeSpan.FromSeconds(60)), "the VMM exits after the machine powers off");
            Assert.Equal(0, firecracker.ExitCode);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            throw await firecracker.FailureAsync(e);
        }
    }

    [Fact]
    public async Task AMissingJitVmmFailsInstanceStartWithTheReasonAndTheFrontEndServesOn()
    {
        using var directory = new TempDirectory();
        string socket = directory.File("fc.sock");
        string missing = directory.File("no-such-dir/sharpvisor");
        ProcessStartInfo start = SharpVisorCommand.FrontEnd("--api-sock", socket, "--id", "fc-missing");
        start.Environment[VmmHandover.JitVmmVariable] = missing;
        using Process process = Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        try
        {
            await Eventually.TrueAsync(() => UnixSocketFiles.IsListening(socket), TimeSpan.FromSeconds(30), "the API socket listens");
            using HttpClient client = UnixSocketHttp.CreateClient(socket, TimeSpan.FromSeconds(30));
            await Put(client, "/machine-config", """{"vcpu_count": 1, "mem_size_mib": 16}""");
            await Put(client, "/boot-source", $$"""{"kernel_image_path": "{{TestKernels.MultibootHello}}"}""");

            using HttpResponseMessage answer = await client.PutAsync("/actions", Json("""{"action_type": "InstanceStart"}"""));
            string body = await answer.Content.ReadAsStringAsync();
            Assert.Equal(HttpStatusCode.BadRequest, answer.StatusCode);
            Assert.Contains("fault_message", body);
            Assert.Contains($"the handover to the JIT VMM failed: {missing} does not exist", body);

            Assert.False(process.HasExited, "the front end serves on after a failed handover");
            Assert.Contains("\"state\":\"Not started\"", await client.GetStringAsync("/"));
            Assert.False(LoadsJitRuntime(process.Id));
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }

        Assert.DoesNotContain("   at ", await stderr);
        _ = await stdout;
    }

    [Fact]
    public async Task AReplayThatFailsInTheJitVmmFailsInstanceStartWithTheReason()
    {
        using var directory = new TempDirectory();
        string socket = directory.File("fc.sock");
        string kernel = directory.File("kernel.elf");
        File.Copy(TestKernels.MultibootHello, kernel);
        await using var firecracker = FirecrackerProcess.Start(["--api-sock", socket, "--id", "fc-replay"]);
        try
        {
            await firecracker.WaitForApiAsync(socket, TimeSpan.FromSeconds(30));
            using HttpClient client = UnixSocketHttp.CreateClient(socket, TimeSpan.FromSeconds(120));
            await Put(client, "/machine-config", """{"vcpu_count": 1, "mem_size_mib": 16}""");
            await Put(client, "/boot-source", $$"""{"kernel_image_path": "{{kernel}}"}""");

            // Accepted by the front end, gone when the JIT VMM replays it.
            File.Delete(kernel);
            using HttpResponseMessage answer = await client.PutAsync("/actions", Json("""{"action_type": "InstanceStart"}"""));
            string body = await answer.Content.ReadAsStringAsync();
            Assert.Equal(HttpStatusCode.BadRequest, answer.StatusCode);
            Assert.Contains("the handover to the JIT VMM failed: replaying PUT /boot-source answered 400", body);

            Assert.True(LoadsJitRuntime(firecracker.Id), "the JIT VMM answered");
            Assert.Contains("\"state\":\"Not started\"", await client.GetStringAsync("/"));
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            throw await firecracker.FailureAsync(e);
        }
    }

    [Fact]
    public async Task AConfigFileHandsOverAtOnceAndTheGuestRunsToItsExit()
    {
        using var directory = new TempDirectory();
        string config = directory.File("vm.json");
        File.WriteAllText(config, $$$"""{"boot-source": {"kernel_image_path": "{{{TestKernels.MultibootHello}}}", "boot_args": "exit=33"}, "machine-config": {"vcpu_count": 1, "mem_size_mib": 16}}""");
        await using var firecracker = FirecrackerProcess.Start(["--api-sock", directory.File("fc.sock"), "--config-file", config, "--no-api"]);
        try
        {
            Assert.True(await firecracker.ExitsWithinAsync(TimeSpan.FromSeconds(120)), "the microVM of the config file runs to its exit");
            Assert.Equal((33 << 1) | 1, firecracker.ExitCode);
            Assert.Contains("Hello from a multiboot kernel", firecracker.Output);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            throw await firecracker.FailureAsync(e);
        }
    }

    /// <summary>
    /// ILC compiles what the front end reaches, and no machine is ever constructed: the executable's
    /// metadata names no assembly of the accelerators or Xen, and no type of the machine (it names
    /// each assembly and type it compiled code of: the positive checks show the search sees them).
    /// </summary>
    [Fact]
    public void TheFrontEndExecutableHasNoAcceleratorXenOrMachineCode()
    {
        byte[] executable = File.ReadAllBytes(SharpVisorCommand.FrontEndPath);
        foreach (string name in new[] { "SharpVisor.Emulator.dll", "SharpVisor.Kvm.dll", "SharpVisor.Xen.dll", "GuestMemory", "X86Cpu", "BlockTranslator", "KvmSystem", "XenDomain", "PciDeviceManager", "VirtualMachineMonitor" })
        {
            Assert.True(executable.AsSpan().IndexOf(Encoding.UTF8.GetBytes(name)) < 0, $"out/firecracker contains {name}");
        }

        Assert.True(executable.AsSpan().IndexOf("SharpVisor.Host.Vmm.dll"u8) >= 0, "the metadata names the assemblies compiled in");
        Assert.True(executable.AsSpan().IndexOf("VmmHandover"u8) >= 0, "the metadata names the types compiled in");
    }

    private static bool LoadsJitRuntime(int pid)
    {
        string maps = File.ReadAllText($"/proc/{pid}/maps");
        return maps.Contains("libcoreclr.so", StringComparison.Ordinal) || maps.Contains("libclrjit.so", StringComparison.Ordinal);
    }

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    private static async Task Put(HttpClient client, string path, string body, string method = "PUT")
    {
        using var request = new HttpRequestMessage(new HttpMethod(method), path) { Content = Json(body) };
        using HttpResponseMessage answer = await client.SendAsync(request);
        Assert.True(answer.StatusCode == HttpStatusCode.NoContent, $"{method} {path}: {(int)answer.StatusCode} {await answer.Content.ReadAsStringAsync()}");
    }
}
