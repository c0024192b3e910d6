using System.Net;
using SharpVisor.Machine.CpuTemplates;

namespace SharpVisor.Host.Tests;

/// <summary>
/// PUT /cpu-config and a config file's "cpu-config": CPUID and MSR modifiers reach the machine's
/// configuration as a <see cref="CpuTemplate"/> (what the guest then sees is
/// EmulatorCpuTemplateTests'); malformed numbers, registers and bitmaps, kvm_capabilities and the
/// aarch64 fields are refused with a 400 that names them; a malformed template gets Firecracker's
/// deserialization error; after InstanceStart the route refuses.
/// </summary>
public sealed class CpuConfigTests
{
    private const string T2sLike = """
        {"cpuid_modifiers": [{"leaf": "0x7", "subleaf": "0x0", "flags": 1, "modifiers": [{"register": "ebx", "bitmap": "0bxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx10"}]}],
         "msr_modifiers": [{"addr": "0x10a", "bitmap": "0b0000000000000000000000000000000000000000000000000000000000000000"}]}
        """;

    [Fact]
    public async Task ATemplateReachesTheMachine()
    {
        await using VmmTestServer vmm = await VmmTestServer.StartAsync();

        VmmTestServer.Response put = await vmm.PutAsync("/cpu-config", T2sLike);
        await vmm.StartMachineAsync();

        Assert.Equal(HttpStatusCode.NoContent, put.Status);
        CpuTemplate template = Assert.IsType<CpuTemplate>(vmm.Factory.Last!.Spec.CpuTemplate);
        CpuidModifier cpuid = Assert.Single(template.Cpuid);
        Assert.Equal(new CpuidModifier(7, 0, CpuidRegister.Ebx, new TemplateBits(Set: 2, Clear: 1)), cpuid);
        MsrModifier msr = Assert.Single(template.Msrs);
        Assert.Equal(0x10Au, msr.Index);
        Assert.Equal(new TemplateBits(0, ulong.MaxValue), msr.Bits);
        VmmTestServer.Response late = await vmm.PutAsync("/cpu-config", "{}");
        Assert.Equal(HttpStatusCode.BadRequest, late.Status);
    }

    [Fact]
    public async Task AConfigFilesCpuConfigIsThePathOfATemplate()
    {
        await using VmmTestServer vmm = await VmmTestServer.StartAsync(directory =>
        {
            string template = directory.File("template.json");
            File.WriteAllText(template, T2sLike);
            string path = directory.File("vm.json");
            File.WriteAllText(path, $$"""
                {"boot-source": {"kernel_image_path": "{{directory.File("vmlinux")}}"}, "cpu-config": "{{template}}"}
                """);
            return path;
        });

        CpuTemplate template = Assert.IsType<CpuTemplate>(vmm.Factory.Last!.Spec.CpuTemplate);
        Assert.Single(template.Cpuid);
        Assert.Single(template.Msrs);
    }

    [Fact]
    public async Task AnEmptyTemplateClearsAnEarlierOne()
    {
        await using VmmTestServer vmm = await VmmTestServer.StartAsync();

        await vmm.PutAsync("/cpu-config", T2sLike);
        VmmTestServer.Response empty = await vmm.PutAsync("/cpu-config", """{"cpuid_modifiers": [], "msr_modifiers": [], "kvm_capabilities": []}""");
        await vmm.StartMachineAsync();

        Assert.Equal(HttpStatusCode.NoContent, empty.Status);
        Assert.Null(vmm.Factory.Last!.Spec.CpuTemplate);
    }

    [Fact]
    public void ASnapshotKeepsTheTemplate()
    {
        var template = new CpuTemplate
        {
            Cpuid = [new CpuidModifier(0x8000_0001, 0, CpuidRegister.Ecx, new TemplateBits(Set: 4, Clear: 1))],
            Msrs = [new MsrModifier(0x10A, new TemplateBits(Set: 0, Clear: ulong.MaxValue))],
        };
        var configuration = new SharpVisor.Host.Vmm.MachineConfiguration { KernelPath = "/k", CpuTemplate = template };

        byte[] saved = SharpVisor.Host.Vmm.SnapshotConfiguration.Save(configuration, SharpVisor.Host.Vmm.AcceleratorKind.Emulator, SharpVisor.Host.Vmm.MmuKind.Nested, SharpVisor.Host.Vmm.CpuVendorKind.Amd);
        var reader = new SharpVisor.Machine.Snapshots.SnapshotReader(SharpVisor.Host.Vmm.SnapshotConfiguration.Tag, saved);
        CpuTemplate loaded = Assert.IsType<CpuTemplate>(SharpVisor.Host.Vmm.SnapshotConfiguration.Load(reader, out _).CpuTemplate);

        Assert.Equal(template.Cpuid, loaded.Cpuid);
        Assert.Equal(template.Msrs, loaded.Msrs);
    }

    [Theory]
    [InlineData("""{"cpuid_modifiers": [{"leaf": "0xZ", "subleaf": "0x0", "flags": 0, "modifiers": []}]}""", "cpuid_modifiers leaf '0xZ'")]
    [InlineData("""{"cpuid_modifiers": [{"leaf": "0x1", "subleaf": "-1", "flags": 0, "modifiers": []}]}""", "cpuid_modifiers subleaf '-1'")]
    [InlineData("""{"cpuid_modifiers": [{"leaf": "0x1", "subleaf": "0x0", "flags": 0, "modifiers": [{"register": "rax", "bitmap": "0b1"}]}]}""", "register 'rax'")]
    [InlineData("""{"cpuid_modifiers": [{"leaf": "0x1", "subleaf": "0x0", "flags": 0, "modifiers": [{"register": "eax", "bitmap": "0b12"}]}]}""", "only 0, 1 and x")]
    [InlineData("""{"cpuid_modifiers": [{"leaf": "0x1", "subleaf": "0x0", "flags": 0, "modifiers": [{"register": "eax", "bitmap": "0b000000000000000000000000000000000"}]}]}""", "33 bits")]
    [InlineData("""{"msr_modifiers": [{"addr": "0x10a", "bitmap": "1010"}]}""", "does not start with 0b")]
    [InlineData("""{"kvm_capabilities": ["!56"]}""", "kvm_capabilities")]
    [InlineData("""{"vcpu_features": [{"index": 0, "bitmap": "0b1"}]}""", "aarch64")]
    [InlineData("""{"cpuid_modifers": []}""", "An error occurred when deserializing the json body of a request: unknown field `cpuid_modifers`, expected one of `kvm_capabilities`, `cpuid_modifiers`, `msr_modifiers`, `reg_modifiers`, `vcpu_features`")]
    [InlineData("""{"msr_modifiers": [{"addr": "0x10a"}]}""", "missing field `bitmap`")]
    public async Task BadTemplatesAreRefusedWithTheReason(string body, string reason)
    {
        await using VmmTestServer vmm = await VmmTestServer.StartAsync();

        VmmTestServer.Response response = await vmm.PutAsync("/cpu-config", body);

        Assert.Equal(HttpStatusCode.BadRequest, response.Status);
        Assert.Contains(reason, response.FaultMessage);
    }
}
