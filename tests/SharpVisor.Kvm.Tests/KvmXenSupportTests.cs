using SharpVisor.Interop.Kvm;
using SharpVisor.Machine;
using SharpVisor.Memory;
using SharpVisor.TestSupport;
using SharpVisor.Xen;

namespace SharpVisor.Kvm.Tests;

/// <summary>The KVM_CAP_XEN_HVM flags: what SharpVisor needs of them, how they read, and what this host says.</summary>
public class KvmXenSupportTests
{
    [Theory]
    [InlineData(0u, false, "KVM_CAP_XEN_HVM = 0", "HYPERCALL_MSR, INTERCEPT_HCALL, SHARED_INFO")]
    [InlineData(0x1u, false, "KVM_CAP_XEN_HVM = 0x1 (HYPERCALL_MSR)", "INTERCEPT_HCALL, SHARED_INFO")]
    [InlineData(0x3u, false, "KVM_CAP_XEN_HVM = 0x3 (HYPERCALL_MSR, INTERCEPT_HCALL)", "SHARED_INFO")]
    [InlineData(0x7u, true, "KVM_CAP_XEN_HVM = 0x7 (HYPERCALL_MSR, INTERCEPT_HCALL, SHARED_INFO)", "")]
    [InlineData(0x3Fu, true, "KVM_CAP_XEN_HVM = 0x3f (HYPERCALL_MSR, INTERCEPT_HCALL, SHARED_INFO, RUNSTATE, EVTCHN_2LEVEL, EVTCHN_SEND)", "")]
    [InlineData(0x47u, true, "KVM_CAP_XEN_HVM = 0x47 (HYPERCALL_MSR, INTERCEPT_HCALL, SHARED_INFO, 0x40)", "")]
    public void TheFlagsDecideWhetherTheXenLayerCanRideOnKvm(uint flags, bool usable, string description, string missing)
    {
        var support = new KvmXenSupport(flags, "/dev/kvm");

        Assert.Equal(usable, support.IsUsable);
        Assert.Equal(description, support.Describe());
        Assert.Equal(missing, string.Join(", ", support.MissingFlags));
        Assert.Equal((flags & KvmXenHvmConfig.FlagEvtchnSend) != 0, support.HasEvtchnSend);
    }

    [Fact]
    public void AMissingDeviceReportsNoFlagsAndSaysWhy()
    {
        KvmXenSupport support = KvmXenSupport.Probe("/nonexistent/kvm");

        Assert.Equal(0u, support.Flags);
        Assert.False(support.IsUsable);
        Assert.Contains("/nonexistent/kvm", support.Where);
    }

    /// <summary>
    /// On a KVM without the flags, attaching a Xen domain is refused with the capability's value and
    /// nothing is configured; on one with them, the attach succeeds (KVM_XEN_HVM_CONFIG accepted).
    /// </summary>
    [KvmFact]
    public void AttachingAXenDomainFollowsThisHostsCapability()
    {
        KvmXenSupport host = KvmXenSupport.Probe();
        using GuestMemory memory = GuestMemory.CreateRam(2 << 20);
        using KvmVirtualMachine vm = KvmVirtualMachine.Create(memory, 1);
        using var domain = new XenDomain(memory, new XenDomainOptions { VcpuCount = 1 });

        if (!host.IsUsable)
        {
            var refused = Assert.Throws<KvmUnavailableException>(() => vm.AttachHypervisorInterface(domain));
            Assert.Contains(host.Describe(), refused.Message);
            Assert.Null(vm.Xen);
            return;
        }

        vm.AttachHypervisorInterface(domain);
        Assert.NotNull(vm.Xen);
        using var vcpu = (KvmVcpu)vm.CreateVcpu(0);
        KvmCpuidEntry2 signature = vcpu.Cpuid.Single(e => e.Function == KvmXenCpuid.HypervisorBase);
        Assert.Equal(0x566E_6558u, signature.Ebx); // "XenV"
        Assert.Contains(vcpu.Cpuid, e => e.Function == KvmXenCpuid.HypervisorBase + KvmXenCpuid.KvmLeafShift && e.Ebx == 0x4B4D_564Bu); // "KVMK"
        Assert.Throws<InvalidOperationException>(() => vm.AttachHypervisorInterface(domain));
    }
}
