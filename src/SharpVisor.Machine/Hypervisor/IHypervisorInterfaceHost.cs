namespace SharpVisor.Machine.Hypervisor;

/// <summary>
/// A virtual machine that can carry a <see cref="IHypervisorInterface"/>: its vCPUs route the
/// hypervisor CPUID leaves, the interface's MSRs and VMCALL/VMMCALL to it. Machines that cannot
/// (KVM without KVM_CAP_XEN_HVM) do not implement this.
/// </summary>
public interface IHypervisorInterfaceHost
{
    /// <summary>Attaches the interface; call before creating vCPUs.</summary>
    void AttachHypervisorInterface(IHypervisorInterface hypervisor);
}
