using System.Net;
using System.Text.Json;
using SharpVisor.Host.Firecracker;

namespace SharpVisor.Host.Tests;

/// <summary>
/// The Firecracker drop-in over a fake machine: every route of Firecracker's spec is served
/// (or refused with its reason), and the logger, metrics and entropy device work as
/// Firecracker's clients expect.
/// </summary>
public sealed class FirecrackerDropInTests
{
    private const string GenericRefusal = "Invalid request method and/or path";

    [Fact]
    public async Task EveryRouteOfTheSpecIsServedOrRefusedWithItsReason()
    {
        await using VmmTestServer vmm = await VmmTestServer.StartAsync();
        FirecrackerSpec spec = FirecrackerSpec.Load();
        var unsupported = VmmApi.Unsupported.ToDictionary(u => (u.Method, u.Path), u => u.Reason);
        int count = 0;
        foreach ((string method, string template) in spec.Operations())
        {
            string path = string.Join('/', template.Split('/').Select(p => p.StartsWith('{') ? "x" : p));
            string? body = method == "GET" ? null : "{}";
            VmmTestServer.Response response = await vmm.SendAsync(new HttpMethod(method), path, body);
            count++;

            Assert.True((int)response.Status < 500, $"{method} {path}: {(int)response.Status} {response.Body}");
            if ((int)response.Status >= 400)
            {
                Assert.DoesNotContain(GenericRefusal, response.FaultMessage);
            }

            if (unsupported.TryGetValue((method, template), out string? reason))
            {
                Assert.Equal(HttpStatusCode.BadRequest, response.Status);
                Assert.Equal(reason, response.FaultMessage);
                Assert.Contains("not supported by SharpVisor yet", reason);
            }
        }

        Assert.True(count >= 38, $"the spec has at least 38 operations, walked {count}");
    }

    [Fact]
    public async Task SerialOutputGoesToTheFileGivenBeforeBoot()
    {
        await using VmmTestServer vmm = await VmmTestServer.StartAsync();
        string serial = vmm.Directory.File("serial.out");
        Assert.Contains("does not exist", (await vmm.PutAsync("/serial", $$"""{"serial_out_path": "{{serial}}"}""")).FaultMessage);
        File.WriteAllText(serial, "");
        Assert.Contains("not supported by SharpVisor yet", (await vmm.PutAsync("/serial", $$$"""{"serial_out_path": "{{{serial}}}", "rate_limiter": {"size": 10, "refill_time": 10}}""")).FaultMessage);
        Assert.Equal(HttpStatusCode.NoContent, (await vmm.PutAsync("/serial", $$"""{"serial_out_path": "{{serial}}"}""")).Status);
        Assert.Equal(HttpStatusCode.NoContent, (await vmm.PutAsync("/boot-source", $$"""{"kernel_image_path": "{{vmm.Kernel}}", "boot_args": "hello-serial"}""")).Status);
        Assert.Equal(HttpStatusCode.NoContent, (await vmm.PutAsync("/actions", """{"action_type": "InstanceStart"}""")).Status);

        await Eventually.TrueAsync(() => File.ReadAllText(serial).Contains("booting: hello-serial", StringComparison.Ordinal), TimeSpan.FromSeconds(10), "the guest's serial output in serial_out_path");
        Assert.Equal(HttpStatusCode.BadRequest, (await vmm.PutAsync("/serial", $$"""{"serial_out_path": "{{serial}}"}""")).Status);
    }

    [Fact]
    public async Task TheLoggerWritesTheVmmsLinesAtItsLevel()
    {
        await using VmmTestServer vmm = await VmmTestServer.StartAsync();
        string log = vmm.Directory.File("fc.log");
        File.WriteAllText(log, "");

        Assert.Contains("does not exist", (await vmm.PutAsync("/logger", $$"""{"log_path": "{{log}}.missing"}""")).FaultMessage);
        Assert.Contains("is not one of", (await vmm.PutAsync("/logger", $$"""{"log_path": "{{log}}", "level": "Loud"}""")).FaultMessage);
        Assert.Equal(HttpStatusCode.NoContent, (await vmm.PutAsync("/logger", $$"""{"log_path": "{{log}}", "level": "warning", "show_level": true, "show_log_origin": true}""")).Status);
        Assert.Equal(HttpStatusCode.NoContent, (await vmm.PutAsync("/machine-config", """{"vcpu_count": 1, "mem_size_mib": 64}""")).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await vmm.PutAsync("/machine-config", """{"vcpu_count": 0, "mem_size_mib": 64}""")).Status);

        string[] warningLines = File.ReadAllLines(log);
        string error = Assert.Single(warningLines);
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+ \[test-vm:[^:\]]+:ERROR:api_server::request\] PUT /machine-config answered 400$", error);

        // Info, no level, no origin: every request's line, as Firecracker writes them.
        Assert.Equal(HttpStatusCode.NoContent, (await vmm.PutAsync("/logger", """{"level": "Info"}""")).Status);
        await vmm.GetAsync("/machine-config");
        string last = File.ReadAllLines(log)[^1];
        Assert.Matches(@"^\S+ \[test-vm:[^:\]]+\] The API server received a GET request on ""/machine-config""\.$", last);

        await vmm.StartMachineAsync();
        Assert.Contains("started the microVM", File.ReadAllText(log));
        Assert.Equal("The requested operation is not supported after starting the microVM.", (await vmm.PutAsync("/logger", """{"level": "Debug"}""")).FaultMessage);
    }

    [Fact]
    public async Task FlushMetricsWritesOneFirecrackerJsonLinePerFlush()
    {
        await using VmmTestServer vmm = await VmmTestServer.StartAsync();
        string metrics = vmm.Directory.File("fc.metrics");
        File.WriteAllText(metrics, "");

        Assert.Contains("metrics are not configured", (await vmm.PutAsync("/actions", """{"action_type": "FlushMetrics"}""")).FaultMessage);
        Assert.Equal(HttpStatusCode.NoContent, (await vmm.PutAsync("/metrics", $$$"""{"metrics_path": "{{{metrics}}}", "emit_id": true, "properties": {"pod": "p1"}}""")).Status);
        Assert.Equal("Reinitialization of metrics not allowed.", (await vmm.PutAsync("/metrics", $$"""{"metrics_path": "{{metrics}}"}""")).FaultMessage);
        Assert.Equal(HttpStatusCode.NoContent, (await vmm.PutAsync("/machine-config", """{"vcpu_count": 1, "mem_size_mib": 64}""")).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await vmm.PutAsync("/machine-config", """{"vcpu_count": 0, "mem_size_mib": 64}""")).Status);
        string disk = vmm.Directory.CreateFile("rootfs.ext4");
        Assert.Equal(HttpStatusCode.NoContent, (await vmm.PutAsync("/drives/rootfs", $$"""{"drive_id": "rootfs", "path_on_host": "{{disk}}", "is_root_device": true, "is_read_only": false}""")).Status);
        await vmm.StartMachineAsync();

        Assert.Equal(HttpStatusCode.NoContent, (await vmm.PutAsync("/actions", """{"action_type": "FlushMetrics"}""")).Status);
        Assert.Equal(HttpStatusCode.NoContent, (await vmm.PutAsync("/actions", """{"action_type": "FlushMetrics"}""")).Status);

        string[] lines = File.ReadAllLines(metrics);
        Assert.Equal(2, lines.Length);
        using JsonDocument first = JsonDocument.Parse(lines[0]);
        using JsonDocument second = JsonDocument.Parse(lines[1]);
        JsonElement root = first.RootElement;
        Assert.True(root.GetProperty("utc_timestamp_ms").GetInt64() > 1_600_000_000_000);
        Assert.Equal("test-vm", root.GetProperty("id").GetString());
        Assert.Equal("p1", root.GetProperty("properties").GetProperty("pod").GetString());
        Assert.True(root.GetProperty("api_server").GetProperty("process_startup_time_us").GetInt64() > 0);

        JsonElement put = root.GetProperty("put_api_requests");
        Assert.Equal(2, put.GetProperty("machine_cfg_count").GetInt64());
        Assert.Equal(1, put.GetProperty("machine_cfg_fails").GetInt64());
        Assert.Equal(2, put.GetProperty("metrics_count").GetInt64());
        Assert.Equal(1, put.GetProperty("metrics_fails").GetInt64());
        Assert.Equal(1, put.GetProperty("boot_source_count").GetInt64());

        // The fake machine's counters: the drive read 4 requests / 4096 bytes, wrote 1 / 512; 10 I/O exits.
        Assert.Equal(4096, root.GetProperty("block").GetProperty("read_bytes").GetInt64());
        Assert.Equal(4, root.GetProperty("block_rootfs").GetProperty("read_count").GetInt64());
        Assert.Equal(512, root.GetProperty("block_rootfs").GetProperty("write_bytes").GetInt64());
        Assert.Equal(10, root.GetProperty("vcpu").GetProperty("exit_io").GetInt64());
        Assert.Equal(0, root.GetProperty("net").GetProperty("rx_bytes_count").GetInt64());

        // Firecracker's counters are per flush: nothing new happened in between but the first FlushMetrics.
        JsonElement next = second.RootElement;
        Assert.Equal(0, next.GetProperty("put_api_requests").GetProperty("machine_cfg_count").GetInt64());
        Assert.Equal(1, next.GetProperty("put_api_requests").GetProperty("actions_count").GetInt64());
        Assert.Equal(0, next.GetProperty("block").GetProperty("read_bytes").GetInt64());
        Assert.Equal(0, next.GetProperty("vcpu").GetProperty("exit_io").GetInt64());
    }

    [Fact]
    public async Task MetricsAreAlsoFlushedPeriodicallyLikeFirecrackers()
    {
        await using VmmTestServer vmm = await VmmTestServer.StartAsync(configure: (directory, options) =>
        {
            File.WriteAllText(directory.File("fc.metrics"), "");
            return options with { Metrics = new MetricsConfiguration { MetricsPath = directory.File("fc.metrics") }, MetricsFlushInterval = TimeSpan.FromMilliseconds(200) };
        });

        await Eventually.TrueAsync(
            () => File.ReadAllLines(vmm.Directory.File("fc.metrics")).Length >= 2,
            TimeSpan.FromSeconds(20),
            "two periodic flushes without FlushMetrics");
        string text = File.ReadAllText(vmm.Directory.File("fc.metrics"));
        foreach (string line in text[..(text.LastIndexOf('\n') + 1)].Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            using JsonDocument json = JsonDocument.Parse(line);
            Assert.True(json.RootElement.TryGetProperty("put_api_requests", out _));
        }
    }

    [Fact]
    public async Task EntropyAddsAVirtioRngAndRefusesARateLimiter()
    {
        await using VmmTestServer vmm = await VmmTestServer.StartAsync();

        VmmTestServer.Response limited = await vmm.PutAsync("/entropy", """{"rate_limiter": {"bandwidth": {"size": 1000, "refill_time": 100}}}""");
        Assert.Equal(HttpStatusCode.BadRequest, limited.Status);
        Assert.Contains("rate_limiter is not supported by SharpVisor yet", limited.FaultMessage);
        Assert.Equal(HttpStatusCode.BadRequest, (await vmm.PutAsync("/entropy", """{"rate": 1}""")).Status);

        Assert.Equal(HttpStatusCode.NoContent, (await vmm.PutAsync("/entropy", "{}")).Status);
        Assert.Contains("\"entropy\":{}", (await vmm.GetAsync("/vm/config")).Body);
        await vmm.StartMachineAsync();

        Assert.True(vmm.Factory.Last!.Spec.EntropyDevice);
    }

    [Fact]
    public async Task WithoutPutEntropyThereIsNoRngDevice()
    {
        await using VmmTestServer vmm = await VmmTestServer.StartAsync();
        await vmm.StartMachineAsync();

        Assert.False(vmm.Factory.Last!.Spec.EntropyDevice);
    }

    [Fact]
    public async Task AConfigFileCarriesLoggerMetricsAndEntropy()
    {
        await using VmmTestServer vmm = await VmmTestServer.StartAsync(directory =>
        {
            File.WriteAllText(directory.File("fc.log"), "");
            File.WriteAllText(directory.File("fc.metrics"), "");
            string path = directory.File("vm.json");
            File.WriteAllText(path, $$"""
                {
                  "boot-source": {"kernel_image_path": "{{directory.File("vmlinux")}}"},
                  "logger": {"log_path": "{{directory.File("fc.log")}}", "level": "Info"},
                  "metrics": {"metrics_path": "{{directory.File("fc.metrics")}}"},
                  "entropy": {}
                }
                """);
            return path;
        });

        Assert.True(vmm.Factory.Last!.Spec.EntropyDevice);
        Assert.Contains("started the microVM", File.ReadAllText(vmm.Directory.File("fc.log")));
        Assert.Equal(HttpStatusCode.NoContent, (await vmm.PutAsync("/actions", """{"action_type": "FlushMetrics"}""")).Status);
        Assert.Contains("\"utc_timestamp_ms\"", File.ReadAllText(vmm.Directory.File("fc.metrics")));
    }
}
