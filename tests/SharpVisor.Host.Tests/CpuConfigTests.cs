using System.Net;

namespace SharpVisor.Host.Tests;

/// <summary>
/// PUT /cpu-config: an empty template is accepted (it changes nothing), every modifier
/// SharpVisor cannot apply is refused with a 400 that names it, a malformed template gets
/// Firecracker's deserialization error, and after InstanceStart the route refuses.
/// </summary>
public sealed class CpuConfigTests
{
    [Fact]
    public async Task TemplatesAreAcceptedOnlyWhenNothingWouldBeDropped()
    {
        await using VmmTestServer vmm = await VmmTestServer.StartAsync();

        VmmTestServer.Response empty = await vmm.PutAsync("/cpu-config", """{"cpuid_modifiers": [], "msr_modifiers": [], "kvm_capabilities": []}""");
        VmmTestServer.Response cpuid = await vmm.PutAsync("/cpu-config", """{"cpuid_modifiers": [{"leaf": "0x7", "subleaf": "0x0", "flags": 1, "modifiers": [{"register": "ebx", "bitmap": "0bxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx0"}]}]}""");
        VmmTestServer.Response msr = await vmm.PutAsync("/cpu-config", """{"msr_modifiers": [{"addr": "0x10a", "bitmap": "0b0"}]}""");
        VmmTestServer.Response capabilities = await vmm.PutAsync("/cpu-config", """{"kvm_capabilities": ["!56"]}""");
        VmmTestServer.Response arm = await vmm.PutAsync("/cpu-config", """{"vcpu_features": [{"index": 0, "bitmap": "0b1"}]}""");
        VmmTestServer.Response typo = await vmm.PutAsync("/cpu-config", """{"cpuid_modifers": []}""");
        VmmTestServer.Response incomplete = await vmm.PutAsync("/cpu-config", """{"msr_modifiers": [{"addr": "0x10a"}]}""");

        Assert.Equal(HttpStatusCode.NoContent, empty.Status);
        Assert.Equal(HttpStatusCode.BadRequest, cpuid.Status);
        Assert.Contains("cpuid_modifiers cannot be applied", cpuid.FaultMessage);
        Assert.Equal(HttpStatusCode.BadRequest, msr.Status);
        Assert.Contains("msr_modifiers cannot be applied", msr.FaultMessage);
        Assert.Equal(HttpStatusCode.BadRequest, capabilities.Status);
        Assert.Contains("kvm_capabilities", capabilities.FaultMessage);
        Assert.Equal(HttpStatusCode.BadRequest, arm.Status);
        Assert.Contains("aarch64", arm.FaultMessage);
        Assert.Equal(HttpStatusCode.BadRequest, typo.Status);
        Assert.StartsWith("An error occurred when deserializing the json body of a request: unknown field `cpuid_modifers`, expected one of `kvm_capabilities`, `cpuid_modifiers`, `msr_modifiers`, `reg_modifiers`, `vcpu_features`", typo.FaultMessage);
        Assert.Equal(HttpStatusCode.BadRequest, incomplete.Status);
        Assert.Contains("missing field `bitmap`", incomplete.FaultMessage);

        await vmm.StartMachineAsync();
        VmmTestServer.Response late = await vmm.PutAsync("/cpu-config", "{}");
        Assert.Equal(HttpStatusCode.BadRequest, late.Status);
    }
}
