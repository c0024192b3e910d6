using SharpVisor.Emulator;
using SharpVisor.Emulator.Accelerator;
using SharpVisor.Emulator.Mmu;
using SharpVisor.Host.Vmm;
using SharpVisor.Kvm;

namespace SharpVisor.Host.Tests;

/// <summary>
/// The accelerator of a Xen domain (docs/xen.md, "Accelerators"): KVM_CAP_XEN_HVM's flags decide
/// whether --accel kvm carries the Xen layer or is one error line; auto and emulator take the emulator.
/// The probes are injected: this is the decision table, not KVM.
/// </summary>
public class XenAcceleratorSelectionTests
{
    private static readonly KvmHostStatus s_hardware = new(true, false, "/dev/kvm is hardware-backed (VT-x/AMD-V)");
    private static readonly KvmHostStatus s_missing = new(false, false, "/dev/kvm not found: load the kvm_intel or kvm_amd module");

    [Theory]
    [InlineData(XenMode.Pvh, 0x7u, "KVM_CAP_XEN_HVM = 0x7 (HYPERCALL_MSR, INTERCEPT_HCALL, SHARED_INFO)")]
    [InlineData(XenMode.Hvm, 0x3Fu, "KVM_CAP_XEN_HVM = 0x3f (HYPERCALL_MSR, INTERCEPT_HCALL, SHARED_INFO, RUNSTATE, EVTCHN_2LEVEL, EVTCHN_SEND)")]
    public void KvmWithTheFlagsItNeedsCarriesTheXenLayer(XenMode mode, uint flags, string described)
    {
        AcceleratorSelection selection = Select(mode, AcceleratorKind.Kvm, () => s_hardware, () => Xen(flags));

        Assert.IsType<KvmAccelerator>(selection.Accelerator);
        Assert.StartsWith("kvm with KVM's Xen support (as asked; ", selection.Reason);
        Assert.Contains(described, selection.Reason);
        Assert.Contains("not yet run on real KVM Xen support", selection.Reason);
    }

    [Theory]
    [InlineData(XenMode.Pvh, 0u, "--xen pvh with --accel kvm: this KVM has no Xen support (KVM_CAP_XEN_HVM = 0)")]
    [InlineData(XenMode.Hvm, 0u, "--xen hvm with --accel kvm: this KVM has no Xen support (KVM_CAP_XEN_HVM = 0)")]
    [InlineData(XenMode.Pvh, 0x1u, "this KVM has Xen support without INTERCEPT_HCALL, SHARED_INFO (KVM_CAP_XEN_HVM = 0x1 (HYPERCALL_MSR))")]
    [InlineData(XenMode.Pvh, 0x3u, "this KVM has Xen support without SHARED_INFO (KVM_CAP_XEN_HVM = 0x3 (HYPERCALL_MSR, INTERCEPT_HCALL))")]
    [InlineData(XenMode.Hvm, 0x38u, "without HYPERCALL_MSR, INTERCEPT_HCALL, SHARED_INFO")]
    public void KvmWithoutThemIsOneErrorLineNamingTheCapability(XenMode mode, uint flags, string fragment)
    {
        var e = Assert.Throws<ArgumentException>(() => Select(mode, AcceleratorKind.Kvm, () => s_hardware, () => Xen(flags)));

        Assert.Contains(fragment, e.Message);
        Assert.Contains("use --accel emulator or auto", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void KvmForAPvDomainIsRefusedWithoutProbing()
    {
        var e = Assert.Throws<ArgumentException>(() => Select(XenMode.Pv, AcceleratorKind.Kvm, NeverProbedKvm, NeverProbedXen));

        Assert.Contains("--xen pv with --accel kvm", e.Message);
        Assert.Contains("PV CPU", e.Message);
    }

    [Fact]
    public void KvmThatIsUnusableFailsAsForAnyGuestBeforeTheXenProbe()
    {
        var e = Assert.Throws<KvmUnavailableException>(() => Select(XenMode.Pvh, AcceleratorKind.Kvm, () => s_missing, NeverProbedXen));

        Assert.Equal(s_missing.Summary, e.Message);
    }

    [Fact]
    public void KvmWithAnMmuModeIsRefusedBeforeProbing()
    {
        var e = Assert.Throws<ArgumentException>(() => AcceleratorSelection.ForXen(
            XenMode.Pvh, AcceleratorKind.Kvm, MmuMode.Nested, "/dev/kvm", NeverProbedKvm, NeverProbedXen));

        Assert.Contains("--mmu nested", e.Message);
    }

    [Theory]
    [InlineData(XenMode.Pvh, 0u, "--xen pvh: the Xen layer runs on the emulator unless --accel kvm asks for KVM's Xen support (this KVM reports KVM_CAP_XEN_HVM = 0)")]
    [InlineData(XenMode.Hvm, 0x3Fu, "--xen hvm: the Xen layer runs on the emulator unless --accel kvm asks for KVM's Xen support (this KVM has it: KVM_CAP_XEN_HVM = 0x3f")]
    public void AutoTakesTheEmulatorAndSaysWhatKvmReports(XenMode mode, uint flags, string fragment)
    {
        AcceleratorSelection selection = Select(mode, AcceleratorKind.Auto, NeverProbedKvm, () => Xen(flags));

        Assert.IsType<EmulatorAccelerator>(selection.Accelerator);
        Assert.StartsWith("emulator (shadow paging): ", selection.Reason);
        Assert.Contains(fragment, selection.Reason);
    }

    [Fact]
    public void AutoAndEmulatorForAPvDomainNeverProbe()
    {
        Assert.Contains("PV CPU", Select(XenMode.Pv, AcceleratorKind.Auto, NeverProbedKvm, NeverProbedXen).Reason);
        Assert.Equal("emulator (shadow paging): as asked", Select(XenMode.Pvh, AcceleratorKind.Emulator, NeverProbedKvm, NeverProbedXen).Reason);
    }

    private static AcceleratorSelection Select(XenMode mode, AcceleratorKind kind, Func<KvmHostStatus> kvm, Func<KvmXenSupport> xen) =>
        AcceleratorSelection.ForXen(mode, kind, null, "/dev/kvm", kvm, xen, null, null, CpuVendor.Intel);

    private static KvmXenSupport Xen(uint flags) => new(flags, "/dev/kvm");

    private static KvmHostStatus NeverProbedKvm() => throw new InvalidOperationException("KVM must not be probed here");

    private static KvmXenSupport NeverProbedXen() => throw new InvalidOperationException("KVM's Xen support must not be probed here");
}
