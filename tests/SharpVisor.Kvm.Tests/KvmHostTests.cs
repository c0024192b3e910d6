using SharpVisor.TestSupport;

namespace SharpVisor.Kvm.Tests;

public sealed class KvmHostTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("sharpvisor-kvmhost-").FullName;

    [Fact]
    public void LoadedKvmPvmModuleMeansPvm()
    {
        string modules = Path.Combine(_root, "module");
        Directory.CreateDirectory(Path.Combine(modules, "kvm_pvm"));
        string cpuinfo = WriteCpuInfo("fpu vme de pse vmx ept");

        Assert.True(KvmHost.IsPvm(modules, cpuinfo, out string reason));
        Assert.Contains("kvm_pvm", reason);
    }

    [Fact]
    public void NoVmxOrSvmFlagMeansPvm()
    {
        string cpuinfo = WriteCpuInfo("fpu vme de pse tsc msr pae hypervisor");

        Assert.True(KvmHost.IsPvm(Path.Combine(_root, "module"), cpuinfo, out string reason));
        Assert.Contains("neither the vmx nor the svm flag", reason);
    }

    [Theory]
    [InlineData("fpu vme vmx ept")]
    [InlineData("fpu svm npt")]
    public void HardwareVirtualizationFlagMeansNotPvm(string flags)
    {
        Assert.False(KvmHost.IsPvm(Path.Combine(_root, "module"), WriteCpuInfo(flags), out _));
    }

    [Fact]
    public void MissingDeviceIsUnusableWithTheOneLineReason()
    {
        KvmHostStatus status = KvmHost.Probe("/nonexistent/kvm", Path.Combine(_root, "module"), WriteCpuInfo("vmx"));

        Assert.False(status.IsUsable);
        Assert.False(status.IsHardwareBacked);
        Assert.Equal("/nonexistent/kvm not found: load the kvm_intel or kvm_amd module", status.Summary);
    }

    [KvmFact]
    public void ThisHostIsDescribed()
    {
        KvmHostStatus status = KvmHost.Probe();

        Assert.True(status.IsUsable);
        if (Directory.Exists("/sys/module/kvm_pvm"))
        {
            Assert.True(status.IsPvm);
            Assert.False(status.IsHardwareBacked);
            Assert.Contains(KvmHost.PvmExplanation, status.Summary);
            Assert.Contains("tiny guests run fine", status.Summary);
        }
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private string WriteCpuInfo(string flags)
    {
        string path = Path.Combine(_root, $"cpuinfo-{Guid.NewGuid():N}");
        File.WriteAllText(path, $"processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n");
        return path;
    }
}
