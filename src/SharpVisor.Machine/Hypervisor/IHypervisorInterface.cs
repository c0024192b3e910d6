namespace SharpVisor.Machine.Hypervisor;

/// <summary>
/// A paravirtual hypervisor interface the guest sees on top of the machine (Xen's, for one): the
/// CPUID leaves from 0x40000000, its MSRs, hypercalls (VMCALL/VMMCALL) and an upcall vector it
/// injects. An accelerator that supports one (<see cref="IHypervisorInterfaceHost"/>) asks it
/// first and falls back to its own behaviour; the interface never knows which accelerator runs it.
/// </summary>
public interface IHypervisorInterface
{
    /// <summary>Called once, before any vCPU runs: how to reach the vCPUs and the clock.</summary>
    void Connect(IHypervisorHost host);

    /// <summary>
    /// Whether this interface owns <paramref name="leaf"/>. Owned leaves replace the accelerator's
    /// own (its KVM leaves, for the emulator); a leaf in the hypervisor range the interface does
    /// not answer reads as zeros.
    /// </summary>
    bool TryGetCpuid(int vcpuId, uint leaf, uint subleaf, out CpuidResult result);

    /// <summary>An MSR this interface owns; false leaves it to the accelerator.</summary>
    bool TryReadMsr(int vcpuId, uint index, out ulong value);

    /// <summary>An MSR write this interface owns; false leaves it to the accelerator.</summary>
    bool TryWriteMsr(int vcpuId, uint index, ulong value, out bool accepted);

    /// <summary>Runs one hypercall; the result goes back through <paramref name="context"/>.</summary>
    void Hypercall(IHypercallContext context);

    /// <summary>
    /// The vector to inject into <paramref name="vcpuId"/> now, if it has an upcall pending (a
    /// level: asked again while it stays pending). The accelerator injects it only while the vCPU
    /// accepts interrupts, and wakes a halted vCPU for it.
    /// </summary>
    bool TryGetPendingUpcall(int vcpuId, out byte vector);
}
