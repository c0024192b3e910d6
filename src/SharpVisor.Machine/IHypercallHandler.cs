namespace SharpVisor.Machine;

/// <summary>
/// The accelerator-neutral hypercall seam: what a guest's VMCALL or VMMCALL (either, whatever the
/// CPU vendor) asks of the hypervisor. The machine holds one handler (<see cref="IVirtualMachine.Hypercalls"/>,
/// KVM's ABI by default: <see cref="KvmHypercalls"/>); another ABI (Xen's) replaces it. The software
/// accelerator calls it on the vCPU's thread with the vCPU's registers; an accelerator whose kernel
/// answers hypercalls itself calls it only for those the kernel passes to user space.
/// </summary>
public interface IHypercallHandler
{
    /// <summary>
    /// Answers one hypercall of vCPU <paramref name="vcpuId"/>: reads the number and arguments from
    /// <paramref name="registers"/> and writes the results back into them (the accelerator copies
    /// every general register of the struct back to the vCPU). The guest's values are untrusted:
    /// validate them here and answer with an error code, never throw for a bad argument.
    /// </summary>
    /// <returns>False when the instruction is not a hypercall for this machine: the guest gets #UD.</returns>
    bool Handle(int vcpuId, ref HypercallRegisters registers);
}
