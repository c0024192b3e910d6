using SharpVisor.Kvm;
using SharpVisor.Machine;

namespace SharpVisor.Host.Vmm;

/// <summary>The accelerator chosen for a domain, and a sentence saying why.</summary>
public sealed record AcceleratorSelection(IAccelerator Accelerator, string Reason)
{
    /// <summary>
    /// Chooses per <paramref name="kind"/>. Throws <see cref="KvmUnavailableException"/> with a
    /// one-line reason when KVM is asked for (or is the only choice) and cannot be used.
    /// </summary>
    public static AcceleratorSelection Choose(AcceleratorKind kind, string kvmDevicePath = "/dev/kvm")
    {
        KvmHostStatus host = KvmHost.Probe(kvmDevicePath);
        if (!host.IsUsable)
        {
            throw new KvmUnavailableException(host.Summary);
        }

        var kvm = new KvmAccelerator(kvmDevicePath);
        if (kind == AcceleratorKind.Kvm)
        {
            return new AcceleratorSelection(kvm, host.IsPvm ? $"kvm (as asked; {host.Summary})" : "kvm (as asked)");
        }

        // The software emulator is not an accelerator yet, so auto can only take KVM; say plainly
        // when that KVM is PVM-backed and what that means for Linux guests.
        return new AcceleratorSelection(kvm, host.IsPvm ? $"kvm: {host.Summary}" : "kvm: hardware-assisted /dev/kvm");
    }
}
