using SharpVisor.Emulator;
using SharpVisor.Emulator.Accelerator;
using SharpVisor.Emulator.Mmu;
using SharpVisor.Kvm;
using SharpVisor.Machine;

namespace SharpVisor.Host.Vmm;

/// <summary>The accelerator chosen for a domain, and a sentence saying why.</summary>
public sealed record AcceleratorSelection(IAccelerator Accelerator, string Reason)
{
    /// <summary>The MMU mode the emulator uses when none is asked for.</summary>
    public const MmuMode DefaultMmuMode = MmuMode.Shadow;

    /// <summary>
    /// Chooses per <paramref name="kind"/>, probing <paramref name="kvmDevicePath"/> when KVM is a
    /// candidate. <paramref name="mmu"/> is the emulator's paging technique (null: shadow).
    /// Throws <see cref="KvmUnavailableException"/> when KVM is asked for and cannot be used, and
    /// <see cref="ArgumentException"/> when an MMU mode is asked for together with KVM.
    /// </summary>
    public static AcceleratorSelection Choose(AcceleratorKind kind, string kvmDevicePath = "/dev/kvm", MmuMode? mmu = null, Action<string>? diagnostics = null, CpuVendor? vendor = null) =>
        Choose(kind, mmu, kvmDevicePath, () => KvmHost.Probe(kvmDevicePath), diagnostics, vendor, HostCpu.Vendor);

    /// <summary>As <see cref="Choose(AcceleratorKind, string, MmuMode?, Action{string}?, CpuVendor?)"/>, with a machine configuration's choices.</summary>
    public static AcceleratorSelection Choose(AcceleratorKind kind, string kvmDevicePath, MmuKind? mmu, Action<string>? diagnostics, CpuVendorKind? vendor) =>
        Choose(kind, kvmDevicePath, mmu.ToMmuMode(), diagnostics, vendor.ToCpuVendor());

    /// <summary>The accelerator for a Xen domain of <paramref name="mode"/>, with a machine configuration's choices, probing <paramref name="kvmDevicePath"/>.</summary>
    public static AcceleratorSelection ForXen(XenMode mode, AcceleratorKind kind, string kvmDevicePath, MmuKind? mmu, Action<string>? diagnostics, CpuVendorKind? vendor) =>
        ForXen(mode, kind, mmu.ToMmuMode(), kvmDevicePath, () => KvmHost.Probe(kvmDevicePath), () => KvmXenSupport.Probe(kvmDevicePath), diagnostics, vendor.ToCpuVendor(), HostCpu.Vendor);

    /// <summary>
    /// The decision itself, with the host probe injected (tests give it PVM, missing or hardware KVM).
    /// <paramref name="diagnostics"/> receives the emulator's reports of guest misbehaviour.
    /// <paramref name="vendor"/> is the CPU vendor asked for (null: the host's, <paramref name="hostVendor"/>):
    /// KVM can only run the host's.
    /// </summary>
    public static AcceleratorSelection Choose(
        AcceleratorKind kind, MmuMode? mmu, string kvmDevicePath, Func<KvmHostStatus> probeKvm, Action<string>? diagnostics = null,
        CpuVendor? vendor = null, CpuVendor hostVendor = CpuVendor.Intel)
    {
        ArgumentNullException.ThrowIfNull(probeKvm);
        CpuVendor guestVendor = vendor ?? hostVendor;
        bool foreignVendor = guestVendor != hostVendor;
        switch (kind)
        {
            case AcceleratorKind.Emulator:
                return Emulator(mmu, "as asked", diagnostics, guestVendor, foreignVendor);

            case AcceleratorKind.Kvm:
            {
                if (mmu is { } mode)
                {
                    throw new ArgumentException(
                        $"--mmu {Name(mode)} chooses the emulator's paging technique; KVM pages with the hardware's EPT/NPT (drop --mmu, or use --accel emulator)");
                }

                if (foreignVendor)
                {
                    throw new ArgumentException(
                        $"--cpu-vendor {HostCpu.Name(guestVendor)}: KVM runs the host's {HostCpu.Name(hostVendor)} processor (drop --cpu-vendor, or use --accel emulator)");
                }

                KvmHostStatus host = probeKvm();
                if (!host.IsUsable)
                {
                    throw new KvmUnavailableException(host.Summary);
                }

                return new AcceleratorSelection(new KvmAccelerator(kvmDevicePath), host.IsPvm ? $"kvm (as asked; {host.Summary})" : "kvm (as asked)");
            }

            case AcceleratorKind.Auto:
            {
                if (foreignVendor)
                {
                    return Emulator(mmu, $"--cpu-vendor {HostCpu.Name(guestVendor)} differs from the host's {HostCpu.Name(hostVendor)}, which KVM runs", diagnostics, guestVendor, foreignVendor);
                }

                KvmHostStatus host = probeKvm();
                if (host.IsHardwareBacked)
                {
                    string ignored = mmu is { } mode ? $"; --mmu {Name(mode)} does not apply (KVM pages with EPT/NPT)" : "";
                    return new AcceleratorSelection(new KvmAccelerator(kvmDevicePath), $"kvm: hardware-assisted {kvmDevicePath}{ignored}");
                }

                // PVM-backed KVM runs guest kernel code through an instruction emulator of its own,
                // far slower than ours; without KVM the emulator is the only way.
                return Emulator(mmu, host.IsUsable ? host.Summary : $"KVM is unavailable: {host.Summary}", diagnostics, guestVendor, foreignVendor);
            }

            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown accelerator kind");
        }
    }

    /// <summary>
    /// The accelerator for a Xen domain (docs/xen.md, "Accelerators"), with the host probes injected.
    /// <c>emulator</c>: the emulator. <c>kvm</c>: KVM carrying the Xen layer through KVM's Xen support
    /// (<see cref="KvmXenHypervisor"/>) when KVM_CAP_XEN_HVM has every flag it needs — else one error
    /// line naming the capability's value; a PV domain needs SharpVisor's PV CPU and so the emulator.
    /// <c>auto</c>: the emulator, saying why — the KVM path has not run on real KVM Xen support yet, so
    /// it is taken only when asked for.
    /// </summary>
    public static AcceleratorSelection ForXen(
        XenMode mode, AcceleratorKind kind, MmuMode? mmu, string kvmDevicePath, Func<KvmHostStatus> probeKvm, Func<KvmXenSupport> probeXen,
        Action<string>? diagnostics = null, CpuVendor? vendor = null, CpuVendor hostVendor = CpuVendor.Intel)
    {
        ArgumentNullException.ThrowIfNull(probeKvm);
        ArgumentNullException.ThrowIfNull(probeXen);
        string option = $"--xen {mode.ToString().ToLowerInvariant()}";
        CpuVendor guestVendor = vendor ?? hostVendor;
        bool foreignVendor = guestVendor != hostVendor;
        switch (kind)
        {
            case AcceleratorKind.Emulator:
                return Emulator(mmu, "as asked", diagnostics, guestVendor, foreignVendor);

            case AcceleratorKind.Kvm:
            {
                if (mode == XenMode.Pv)
                {
                    throw new ArgumentException(
                        $"{option} with --accel kvm: a PV domain runs on SharpVisor's PV CPU, which is the emulator's (KVM's Xen support is for PVH and HVM domains); use --accel emulator or auto");
                }

                // The same refusals as a plain guest's (an MMU mode, another vendor, no usable KVM).
                AcceleratorSelection kvm = Choose(AcceleratorKind.Kvm, mmu, kvmDevicePath, probeKvm, diagnostics, vendor, hostVendor);
                KvmXenSupport xen = probeXen();
                if (!xen.IsUsable)
                {
                    string lacking = xen.Flags == 0 ? "no Xen support" : $"Xen support without {string.Join(", ", xen.MissingFlags)}";
                    throw new ArgumentException(
                        $"{option} with --accel kvm: this KVM has {lacking} ({xen.Describe()}); SharpVisor's Xen layer rides on KVM only with KVM_CAP_XEN_HVM's HYPERCALL_MSR, INTERCEPT_HCALL and SHARED_INFO; use --accel emulator or auto");
                }

                return kvm with { Reason = $"kvm with KVM's Xen support (as asked; {xen.Describe()}; not yet run on real KVM Xen support: docs/xen.md)" };
            }

            case AcceleratorKind.Auto:
            {
                string why = mode == XenMode.Pv
                    ? $"{option}: a PV domain runs on SharpVisor's PV CPU, the emulator's"
                    : $"{option}: the Xen layer runs on the emulator unless --accel kvm asks for KVM's Xen support ({XenProbeSummary(probeXen)})";
                return Emulator(mmu, why, diagnostics, guestVendor, foreignVendor);
            }

            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown accelerator kind");
        }
    }

    private static string XenProbeSummary(Func<KvmXenSupport> probeXen)
    {
        KvmXenSupport xen = probeXen();
        return xen.IsUsable ? $"this KVM has it: {xen.Describe()}" : $"this KVM reports {xen.Describe()}";
    }

    /// <summary>"shadow" or "nested", as the command line spells it.</summary>
    public static string Name(MmuMode mode) => mode.ToString().ToLowerInvariant();

    /// <summary>The emulator; the reason names the CPU vendor when it is not the host's.</summary>
    private static AcceleratorSelection Emulator(MmuMode? mmu, string why, Action<string>? diagnostics, CpuVendor vendor, bool foreignVendor)
    {
        MmuMode mode = mmu ?? DefaultMmuMode;
        string cpu = foreignVendor ? $", {HostCpu.Name(vendor)} CPU" : "";
        return new AcceleratorSelection(new EmulatorAccelerator(mode, diagnostics, vendor), $"emulator ({Name(mode)} paging{cpu}): {why}");
    }
}
