using System.Net;

namespace SharpVisor.Host.Tests.Mmds;

/// <summary>PUT /mmds/config is checked as Firecracker checks it; PUT, PATCH and GET /mmds keep the data.</summary>
public sealed class MmdsApiTests
{
    [Fact]
    public async Task ConfigNeedsAnExistingNicAndALinkLocalAddress()
    {
        await using VmmTestServer vmm = await VmmTestServer.StartAsync();

        VmmTestServer.Response noNic = await vmm.PutAsync("/mmds/config", """{"network_interfaces": ["eth0"]}""");
        Assert.Equal(HttpStatusCode.NoContent, (await vmm.PutAsync("/network-interfaces/eth0", """{"iface_id": "eth0", "host_dev_name": "tap0"}""")).Status);
        VmmTestServer.Response version = await vmm.PutAsync("/mmds/config", """{"version": "V3", "network_interfaces": ["eth0"]}""");
        VmmTestServer.Response address = await vmm.PutAsync("/mmds/config", """{"network_interfaces": ["eth0"], "ipv4_address": "10.0.0.1"}""");
        VmmTestServer.Response compat = await vmm.PutAsync("/mmds/config", """{"network_interfaces": ["eth0"], "imds_compat": true}""");
        VmmTestServer.Response missing = await vmm.PutAsync("/mmds/config", """{"version": "V2"}""");
        VmmTestServer.Response good = await vmm.PutAsync("/mmds/config", """{"version": "V2", "network_interfaces": ["eth0"], "ipv4_address": "169.254.170.2"}""");

        Assert.Equal(HttpStatusCode.BadRequest, noNic.Status);
        Assert.Contains("does not correspond to any existing network interface", noNic.FaultMessage);
        Assert.Contains("is not one of V1, V2", version.FaultMessage);
        Assert.Contains("link-local", address.FaultMessage);
        Assert.Contains("imds_compat", compat.FaultMessage);
        Assert.Contains("missing field `network_interfaces`", missing.FaultMessage);
        Assert.Equal(HttpStatusCode.NoContent, good.Status);
    }

    [Fact]
    public async Task DataIsPutPatchedAndRead()
    {
        await using VmmTestServer vmm = await VmmTestServer.StartAsync();

        Assert.Equal(HttpStatusCode.NoContent, (await vmm.PutAsync("/mmds", """{"latest": {"meta-data": {"ami-id": "ami-1", "gone": "x"}}}""")).Status);
        Assert.Equal(HttpStatusCode.NoContent, (await vmm.PatchAsync("/mmds", """{"latest": {"meta-data": {"gone": null, "extra": "y"}}}""")).Status);
        VmmTestServer.Response read = await vmm.GetAsync("/mmds");
        VmmTestServer.Response notObject = await vmm.PutAsync("/mmds", "[1]");
        VmmTestServer.Response tooBig = await vmm.PutAsync("/mmds", $$"""{"big": "{{new string('x', 60_000)}}"}""");

        Assert.Equal(HttpStatusCode.OK, read.Status);
        Assert.Equal("""{"latest":{"meta-data":{"ami-id":"ami-1","extra":"y"}}}""", read.Body);
        Assert.Equal(HttpStatusCode.BadRequest, notObject.Status);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, tooBig.Status);
        Assert.Equal(read.Body, (await vmm.GetAsync("/mmds")).Body);
    }
}
