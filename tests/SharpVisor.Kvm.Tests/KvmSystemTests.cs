using SharpVisor.Interop;
using SharpVisor.Interop.Kvm;
using SharpVisor.Memory;
using SharpVisor.TestSupport;

namespace SharpVisor.Kvm.Tests;

public class KvmSystemTests
{
    [KvmFact]
    public void OpensTheKvmDeviceAndReportsItsLimits()
    {
        using KvmSystem system = KvmSystem.Open();

        Assert.True(system.VcpuMmapSize >= 2352, $"vCPU mmap size {system.VcpuMmapSize}");
        Assert.True(system.CheckExtension(KvmCapability.Irqchip) > 0);
        Assert.True(system.CheckExtension(KvmCapability.ImmediateExit) > 0);
        Assert.True(system.CheckExtension(KvmCapability.ReadonlyMem) > 0);
        KvmCpuidEntry2 vendor = Assert.Single(system.GetSupportedCpuid(), e => e.Function == 0);
        Assert.True(vendor.Eax >= 1, "leaf 0 reports the highest basic leaf");
    }

    [Fact]
    public void MissingDeviceSaysWhatToDo()
    {
        var e = Assert.Throws<KvmUnavailableException>(() => KvmSystem.Open("/nonexistent/kvm"));
        Assert.Equal("/nonexistent/kvm not found: load the kvm_intel or kvm_amd module", e.Message);
    }

    [Fact]
    public void PermissionDeniedSaysWhatToDo()
    {
        // Root cannot be refused by file permissions, so the errno mapping is checked directly.
        Assert.Equal(
            "no permission to open /dev/kvm: add your user to the kvm group or run as root",
            KvmUnavailableException.ForOpenError("/dev/kvm", LibC.EACCES).Message);
        Assert.Equal(
            KvmUnavailableException.ForOpenError("/dev/kvm", LibC.EACCES).Message,
            KvmUnavailableException.ForOpenError("/dev/kvm", LibC.EPERM).Message);
    }

    [Fact]
    public void ADeviceThatIsNotKvmIsRejected()
    {
        var e = Assert.Throws<KvmUnavailableException>(() => KvmSystem.Open("/dev/null"));
        Assert.StartsWith("/dev/null is not a KVM device", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void AcceleratorOnAMissingDeviceThrowsTheOneLineError()
    {
        var accelerator = new KvmAccelerator("/nonexistent/kvm");
        using GuestMemory memory = GuestMemory.CreateRam(2 << 20);

        var e = Assert.Throws<KvmUnavailableException>(() => accelerator.CreateVirtualMachine(memory, 1));
        Assert.Equal("/nonexistent/kvm not found: load the kvm_intel or kvm_amd module", e.Message);
    }
}
