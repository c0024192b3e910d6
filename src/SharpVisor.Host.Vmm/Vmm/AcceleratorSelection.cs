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

    /// <summary>As <see cref="ForXen(AcceleratorKind, MmuMode?, Action{string}?, CpuVendor?)"/>, with a machine configuration's choices.</summary>
    public static AcceleratorSelection ForXen(AcceleratorKind kind, MmuKind? mmu, Action<string>? diagnostics, CpuVendorKind? vendor) =>
        ForXen(kind, mmu.ToMmuMode(), diagnostics, vendor.ToCpuVendor());

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
    /// The accelerator for a Xen domain: the Xen layer rides on the emulator. Riding on KVM needs
    /// KVM's Xen support (KVM_CAP_XEN_HVM), which SharpVisor does not use (yet): --accel kvm is
    /// refused with one line, auto picks the emulator and says why.
    /// </summary>
    public static AcceleratorSelection ForXen(AcceleratorKind kind, MmuMode? mmu, Action<string>? diagnostics = null, CpuVendor? vendor = null)
    {
        CpuVendor hostVendor = HostCpu.Vendor;
        CpuVendor guestVendor = vendor ?? hostVendor;
        bool foreignVendor = guestVendor != hostVendor;
        return kind switch
        {
            AcceleratorKind.Kvm => throw new ArgumentException(
                "--xen with --accel kvm: SharpVisor's Xen layer cannot ride on KVM here (that needs KVM_CAP_XEN_HVM support, not implemented); use --accel emulator or auto"),
            AcceleratorKind.Emulator => Emulator(mmu, "as asked", diagnostics, guestVendor, foreignVendor),
            _ => Emulator(mmu, "--xen: the Xen layer runs on the emulator (KVM's Xen support, KVM_CAP_XEN_HVM, is not used)", diagnostics, guestVendor, foreignVendor),
        };
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
