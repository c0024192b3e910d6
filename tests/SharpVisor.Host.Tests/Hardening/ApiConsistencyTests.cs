using System.Net;
using System.Text.Json;
using SharpVisor.Host.Domains;
using SharpVisor.Host.Vmm;

namespace SharpVisor.Host.Tests.Hardening;

/// <summary>
/// Issue 17, items 6 and 7: a request the API accepts is never refused when the machine is
/// built, and a request it refuses changes nothing — neither the configuration nor the running
/// machine.
/// </summary>
public sealed class ApiConsistencyTests
{
    [Fact]
    public async Task ADriveIdThePutAcceptsIsAcceptedWhenTheMachineIsBuilt()
    {
        await using VmmTestServer vmm = await VmmTestServer.StartAsync();
        string disk = vmm.Directory.CreateFile("disk.img");
        string id = new('d', 64);

        Assert.Equal(HttpStatusCode.NoContent, (await vmm.PutAsync($"/drives/{id}", $$"""{"drive_id": "{{id}}", "path_on_host": "{{disk}}", "is_root_device": true}""")).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await vmm.PutAsync($"/drives/{id}d", $$"""{"drive_id": "{{id}}d", "path_on_host": "{{disk}}", "is_root_device": false}""")).Status);
        await vmm.StartMachineAsync();

        // The real factory's configuration of that spec passes the machine's own validation.
        MachineConfiguration configuration = MonitorDomainMachineFactory.WithConsole(vmm.Factory.Last!.Spec, Stream.Null);
        configuration.Validate();
        Assert.Equal(id, Assert.Single(configuration.Disks).Id);
    }

    [Theory]
    [InlineData("/drives/rootfs", """{"drive_id": "rootfs", "path_on_host": "EMPTY", "is_root_device": false}""", "smaller than one 512-byte sector")]
    [InlineData("/drives/rootfs", """{"drive_id": "rootfs", "path_on_host": "DIR", "is_root_device": false}""", "not a regular file")]
    [InlineData("/network-interfaces/eth0", """{"iface_id": "eth0", "host_dev_name": "tap:0"}""", "host_dev_name")]
    [InlineData("/network-interfaces/eth0", """{"iface_id": "eth0", "host_dev_name": "täp0"}""", "host_dev_name")]
    [InlineData("/network-interfaces/eth0", """{"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "01:00:5e:00:00:01"}""", "multicast")]
    [InlineData("/network-interfaces/eth0", """{"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "00:00:00:00:00:00"}""", "all zeros")]
    [InlineData("/balloon", """{"amount_mib": 16, "deflate_on_oom": true, "stats_polling_interval_s": 70000}""", "stats_polling_interval_s")]
    public async Task ValuesTheMachineWouldRefuseAreRefusedAtTheEdge(string path, string body, string expected)
    {
        await using VmmTestServer vmm = await VmmTestServer.StartAsync();
        string empty = vmm.Directory.CreateFile("empty.img", size: 0);

        VmmTestServer.Response response = await vmm.PutAsync(path, body.Replace("EMPTY", empty).Replace("DIR", vmm.Directory.Path));

        Assert.Equal(HttpStatusCode.BadRequest, response.Status);
        Assert.Contains(expected, response.FaultMessage);
        using JsonDocument config = JsonDocument.Parse((await vmm.GetAsync("/vm/config")).Body);
        Assert.Equal(0, config.RootElement.GetProperty("drives").GetArrayLength());
        Assert.Equal(0, config.RootElement.GetProperty("network-interfaces").GetArrayLength());
        Assert.False(config.RootElement.TryGetProperty("balloon", out _));
    }

    [Fact]
    public async Task TwoDrivesCannotShareAnImage()
    {
        await using VmmTestServer vmm = await VmmTestServer.StartAsync();
        string disk = vmm.Directory.CreateFile("disk.img");
        Assert.Equal(HttpStatusCode.NoContent, (await vmm.PutAsync("/drives/a", $$"""{"drive_id": "a", "path_on_host": "{{disk}}", "is_root_device": false}""")).Status);
        VmmTestServer.Response second = await vmm.PutAsync("/drives/b", $$"""{"drive_id": "b", "path_on_host": "{{disk}}", "is_root_device": false}""");
        Assert.Equal(HttpStatusCode.BadRequest, second.Status);
        Assert.Contains("already the image of another drive", second.FaultMessage);

        // Replacing a drive with itself is fine.
        Assert.Equal(HttpStatusCode.NoContent, (await vmm.PutAsync("/drives/a", $$"""{"drive_id": "a", "path_on_host": "{{disk}}", "is_root_device": true}""")).Status);
    }

    [Theory]
    [InlineData(5_000_000)]
    [InlineData(70_000)]
    [InlineData(-1)]
    public async Task ARefusedStatisticsIntervalLeavesPollingAndConfigurationAsTheyWere(int seconds)
    {
        await using VmmTestServer vmm = await VmmTestServer.StartAsync();
        Assert.Equal(HttpStatusCode.NoContent, (await vmm.PutAsync("/balloon", """{"amount_mib": 16, "deflate_on_oom": false, "stats_polling_interval_s": 5}""")).Status);
        await vmm.StartMachineAsync();

        VmmTestServer.Response response = await vmm.PatchAsync("/balloon/statistics", $$"""{"stats_polling_interval_s": {{seconds}}}""");

        Assert.Equal(HttpStatusCode.BadRequest, response.Status);
        Assert.Contains("stats_polling_interval_s", response.FaultMessage);
        Assert.Null(vmm.Factory.Last!.BalloonStatisticsInterval); // the machine was not touched
        Assert.Equal(5, JsonDocument.Parse((await vmm.GetAsync("/balloon")).Body).RootElement.GetProperty("stats_polling_interval_s").GetInt32());
        Assert.Equal(HttpStatusCode.NoContent, (await vmm.PatchAsync("/balloon/statistics", """{"stats_polling_interval_s": 65535}""")).Status);
        Assert.Equal(65535, vmm.Factory.Last!.BalloonStatisticsInterval);
    }
}
