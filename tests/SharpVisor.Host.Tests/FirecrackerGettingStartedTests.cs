using System.Diagnostics;
using System.Text;
using System.Text.Json;
using SharpVisor.Host.Http;
using SharpVisor.TestSupport;

namespace SharpVisor.Host.Tests;

/// <summary>
/// Firecracker's getting-started sequence, as its docs write it (curl against the API socket),
/// run against the real `sharpvisor firecracker` process booting the tiny Multiboot kernel.
/// </summary>
public sealed class FirecrackerGettingStartedTests
{
    [Fact]
    public async Task TheGettingStartedSequenceWithCurlBootsTheGuest()
    {
        using var directory = new TempDirectory();
        string socket = directory.File("firecracker.socket");
        string log = directory.File("firecracker.log");
        string metrics = directory.File("firecracker.metrics");
        File.WriteAllText(log, "");
        File.WriteAllText(metrics, "");

        await using var firecracker = FirecrackerProcess.Start(["--api-sock", socket, "--id", "fc-curl", "--enable-pci", "--no-seccomp"]);
        try
        {
            await firecracker.WaitForApiAsync(socket, TimeSpan.FromSeconds(30));

            Assert.Equal((204, ""), Curl(socket, "PUT", "/logger", $$"""{"log_path": "{{log}}", "level": "Debug", "show_level": true, "show_log_origin": true}"""));
            Assert.Equal((204, ""), Curl(socket, "PUT", "/metrics", $$"""{"metrics_path": "{{metrics}}"}"""));
            Assert.Equal((204, ""), Curl(socket, "PUT", "/machine-config", """{"vcpu_count": 1, "mem_size_mib": 16}"""));
            Assert.Equal((204, ""), Curl(socket, "PUT", "/boot-source", $$"""{"kernel_image_path": "{{TestKernels.MultibootHello}}", "boot_args": "loop=20000"}"""));
            Assert.Equal((204, ""), Curl(socket, "PUT", "/entropy", "{}"));
            (int status, string body) = Curl(socket, "PUT", "/vsock", """{"guest_cid": 2, "uds_path": "/tmp/v.sock"}""");
            Assert.Equal(400, status);
            Assert.Contains("guest_cid 2 is out of range", body);
            Assert.Equal((204, ""), Curl(socket, "PUT", "/actions", """{"action_type": "InstanceStart"}"""));

            (int infoStatus, string info) = Curl(socket, "GET", "/", null);
            Assert.Equal(200, infoStatus);
            Assert.Contains("\"id\":\"fc-curl\"", info);
            Assert.Contains("\"state\":\"Running\"", info);

            // The serial console goes to standard output, as Firecracker's does.
            await firecracker.WaitForLineAsync("Hello from a multiboot kernel", TimeSpan.FromSeconds(60));

            Assert.Equal((204, ""), Curl(socket, "PUT", "/actions", """{"action_type": "FlushMetrics"}"""));
            using (JsonDocument line = JsonDocument.Parse(File.ReadAllLines(metrics).Single()))
            {
                JsonElement put = line.RootElement.GetProperty("put_api_requests");
                Assert.Equal(1, put.GetProperty("logger_count").GetInt64());
                Assert.Equal(1, put.GetProperty("boot_source_count").GetInt64());
                Assert.Equal(1, put.GetProperty("vsock_fails").GetInt64());
                Assert.True(line.RootElement.GetProperty("vcpu").EnumerateObject().Sum(e => e.Value.GetInt64()) > 0, "the vCPU exited at least once");
            }

            string logText = File.ReadAllText(log);
            Assert.Contains("[fc-curl:", logText);
            Assert.Contains(":INFO:api_server::request] The API server received a PUT request on \"/boot-source\".", logText);
            Assert.Contains(":ERROR:api_server::request] PUT /vsock answered 400", logText);
            Assert.Contains(":INFO:vmm::builder] started the microVM", logText);

            Assert.Equal((204, ""), Curl(socket, "PUT", "/sharpvisor/power", """{"action": "PowerOff"}"""));
            Assert.True(await firecracker.ExitsWithinAsync(TimeSpan.FromSeconds(30)), "the VMM exits after the machine powers off");
            Assert.Equal(0, firecracker.ExitCode);
            Assert.Contains("the microVM stopped", File.ReadAllText(log));
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            throw await firecracker.FailureAsync(e);
        }

        Assert.DoesNotContain("   at ", await firecracker.StandardErrorAsync());
    }

    /// <summary>
    /// The calls firecracker-go-sdk makes for Kata Containers and firecracker-containerd, in its
    /// handlers' order and with its bodies (logger, metrics, machine-config with smt, boot-source,
    /// the root drive, a NIC on a TAP, vsock with vsock_id, InstanceStart), through curl against
    /// the real `sharpvisor firecracker` running in a network namespace that holds the TAP.
    /// </summary>
    [NetworkFact]
    public async Task TheGoSdkCallOrderStartsTheMicroVm()
    {
        using var directory = new TempDirectory();
        using NetworkNamespace ns = NetworkNamespace.Create();
        ns.Ip("tuntap", "add", "dev", "fctap0", "mode", "tap", "vnet_hdr");
        ns.Ip("link", "set", "fctap0", "up");
        string socket = directory.File("fc-sdk.socket");
        string log = directory.File("fc.log");
        string metrics = directory.File("fc.metrics");
        string rootfs = directory.File("rootfs.ext4");
        File.WriteAllText(log, "");
        File.WriteAllText(metrics, "");
        using (FileStream image = File.Create(rootfs))
        {
            image.SetLength(4 << 20);
        }

        await using var firecracker = FirecrackerProcess.Start(["--api-sock", socket, "--id", "fc-sdk"], ns);
        try
        {
            await firecracker.WaitForApiAsync(socket, TimeSpan.FromSeconds(30));

            (string Method, string Path, string Body)[] calls =
            [
                ("PUT", "/logger", $$"""{"log_path":"{{log}}","level":"Debug","show_level":true,"show_log_origin":true}"""),
                ("PUT", "/metrics", $$"""{"metrics_path":"{{metrics}}"}"""),
                ("PUT", "/machine-config", """{"vcpu_count":1,"mem_size_mib":32,"smt":false}"""),
                ("PUT", "/boot-source", $$"""{"kernel_image_path":"{{TestKernels.MultibootHello}}","boot_args":"loop=20000"}"""),
                ("PUT", "/drives/1", $$"""{"drive_id":"1","path_on_host":"{{rootfs}}","is_root_device":true,"is_read_only":false}"""),
                ("PUT", "/network-interfaces/1", """{"iface_id":"1","host_dev_name":"fctap0","guest_mac":"06:00:ac:10:00:02"}"""),
                ("PUT", "/vsock", $$"""{"vsock_id":"root","guest_cid":3,"uds_path":"{{directory.File("v.sock")}}"}"""),
                ("PUT", "/actions", """{"action_type":"InstanceStart"}"""),
            ];
            foreach ((string method, string path, string body) in calls)
            {
                (int status, string answer) = Curl(socket, method, path, body);
                Assert.True(status == 204, $"{method} {path}: {status} {answer}");
            }

            (int infoStatus, string info) = Curl(socket, "GET", "/", null);
            Assert.Equal(200, infoStatus);
            Assert.Contains("\"state\":\"Running\"", info);
            (int configStatus, string config) = Curl(socket, "GET", "/vm/config", null);
            Assert.Equal(200, configStatus);
            Assert.Contains("\"host_dev_name\":\"fctap0\"", config);
            Assert.Contains("\"guest_cid\":3", config);

            Assert.Equal((204, ""), Curl(socket, "PUT", "/actions", """{"action_type": "FlushMetrics"}"""));
            using (JsonDocument line = JsonDocument.Parse(File.ReadAllLines(metrics).Last()))
            {
                JsonElement put = line.RootElement.GetProperty("put_api_requests");
                foreach (string counter in new[] { "logger_count", "machine_cfg_count", "boot_source_count", "drive_count", "network_count", "vsock_count", "actions_count" })
                {
                    Assert.True(put.GetProperty(counter).GetInt64() >= 1, $"{counter} counted");
                }
            }

            // The guest's greeting, before the power-off: the API calls above can finish while the
            // kernel is still writing it.
            await firecracker.WaitForLineAsync("Hello from a multiboot kernel", TimeSpan.FromSeconds(60));
            Assert.Equal((204, ""), Curl(socket, "PUT", "/sharpvisor/power", """{"action": "PowerOff"}"""));
            Assert.True(await firecracker.ExitsWithinAsync(TimeSpan.FromSeconds(30)), "the VMM exits after the machine powers off");
            Assert.Equal(0, firecracker.ExitCode);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            throw await firecracker.FailureAsync(e);
        }

        Assert.DoesNotContain("   at ", await firecracker.StandardErrorAsync());
    }

    [Fact]
    public void FirecrackerFlagsAreDocumentedInHelp()
    {
        ProcessStartInfo start = SharpVisorCommand.FrontEnd("--help");
        using Process help = Process.Start(start)!;
        string text = help.StandardOutput.ReadToEnd();
        help.WaitForExit();

        foreach (string flag in new[] { "--api-sock", "--config-file", "--no-api", "--id", "--boot-timer", "--level", "--log-path", "--show-level", "--show-log-origin", "--metrics-path", "--enable-pci", "--seccomp-filter", "--no-seccomp" })
        {
            Assert.Contains(flag, text);
        }

        Assert.Contains("NOT applied", text);
    }

    /// <summary>curl as Firecracker's getting-started guide uses it; returns the status and body.</summary>
    private static (int Status, string Body) Curl(string socket, string method, string path, string? json)
    {
        var start = new ProcessStartInfo("curl") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string argument in new[] { "-sS", "--unix-socket", socket, "-X", method, "-H", "Accept: application/json", "-H", "Content-Type: application/json", "-w", "\n%{http_code}" })
        {
            start.ArgumentList.Add(argument);
        }

        if (json is not null)
        {
            start.ArgumentList.Add("--data");
            start.ArgumentList.Add(json);
        }

        start.ArgumentList.Add("http://localhost" + path);
        using Process curl = Process.Start(start)!;
        string output = curl.StandardOutput.ReadToEnd();
        curl.WaitForExit();
        Assert.True(curl.ExitCode == 0, $"curl {method} {path} failed: {curl.StandardError.ReadToEnd()}");
        int split = output.LastIndexOf('\n');
        return (int.Parse(output[(split + 1)..], System.Globalization.CultureInfo.InvariantCulture), output[..split]);
    }
}
