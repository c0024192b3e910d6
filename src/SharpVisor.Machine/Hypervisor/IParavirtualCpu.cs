namespace SharpVisor.Machine.Hypervisor;

/// <summary>
/// A hypervisor that runs its guest kernel deprivileged and takes the CPU's privileged paths
/// itself (Xen PV): the accelerator's CPU offers it every SYSCALL and every exception or interrupt
/// before using the guest's own MSRs and IDT. Returning true means the hypervisor has handled it
/// and left the vCPU where the guest continues.
/// </summary>
public interface IParavirtualCpu
{
    /// <summary>SYSCALL at <paramref name="returnRip"/> (the next instruction): a hypercall from the guest kernel, a system call from its user mode.</summary>
    bool OnSyscall(IParavirtualCpuContext cpu, ulong returnRip);

    /// <summary>An exception or interrupt about to be delivered through the IDT.</summary>
    bool OnEvent(IParavirtualCpuContext cpu, ParavirtualEvent e);
}
