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
    public static AcceleratorSelection Choose(AcceleratorKind kind, string kvmDevicePath = "/dev/kvm", MmuMode? mmu = null, Action<string>? diagnostics = null) =>
        Choose(kind, mmu, kvmDevicePath, () => KvmHost.Probe(kvmDevicePath), diagnostics);

    /// <summary>
    /// The decision itself, with the host probe injected (tests give it PVM, missing or hardware KVM).
    /// <paramref name="diagnostics"/> receives the emulator's reports of guest misbehaviour.
    /// </summary>
    public static AcceleratorSelection Choose(AcceleratorKind kind, MmuMode? mmu, string kvmDevicePath, Func<KvmHostStatus> probeKvm, Action<string>? diagnostics = null)
    {
        ArgumentNullException.ThrowIfNull(probeKvm);
        switch (kind)
        {
            case AcceleratorKind.Emulator:
                return Emulator(mmu, "as asked", diagnostics);

            case AcceleratorKind.Kvm:
            {
                if (mmu is { } mode)
                {
                    throw new ArgumentException(
                        $"--mmu {Name(mode)} chooses the emulator's paging technique; KVM pages with the hardware's EPT/NPT (drop --mmu, or use --accel emulator)");
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
                KvmHostStatus host = probeKvm();
                if (host.IsHardwareBacked)
                {
                    string ignored = mmu is { } mode ? $"; --mmu {Name(mode)} does not apply (KVM pages with EPT/NPT)" : "";
                    return new AcceleratorSelection(new KvmAccelerator(kvmDevicePath), $"kvm: hardware-assisted {kvmDevicePath}{ignored}");
                }

                // PVM-backed KVM runs guest kernel code through an instruction emulator of its own,
                // far slower than ours; without KVM the emulator is the only way.
                return Emulator(mmu, host.IsUsable ? host.Summary : $"KVM is unavailable: {host.Summary}", diagnostics);
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
    public static AcceleratorSelection ForXen(AcceleratorKind kind, MmuMode? mmu, Action<string>? diagnostics = null) => kind switch
    {
        AcceleratorKind.Kvm => throw new ArgumentException(
            "--xen with --accel kvm: SharpVisor's Xen layer cannot ride on KVM here (that needs KVM_CAP_XEN_HVM support, not implemented); use --accel emulator or auto"),
        AcceleratorKind.Emulator => Emulator(mmu, "as asked", diagnostics),
        _ => Emulator(mmu, "--xen: the Xen layer runs on the emulator (KVM's Xen support, KVM_CAP_XEN_HVM, is not used)", diagnostics),
    };

    /// <summary>"shadow" or "nested", as the command line spells it.</summary>
    public static string Name(MmuMode mode) => mode.ToString().ToLowerInvariant();

    private static AcceleratorSelection Emulator(MmuMode? mmu, string why, Action<string>? diagnostics)
    {
        MmuMode mode = mmu ?? DefaultMmuMode;
        return new AcceleratorSelection(new EmulatorAccelerator(mode, diagnostics), $"emulator ({Name(mode)} paging): {why}");
    }
}
