namespace SharpVisor.Machine.Hypervisor;

/// <summary>
/// A virtual machine that can carry a <see cref="IHypervisorInterface"/>: its vCPUs route the
/// hypervisor CPUID leaves, the interface's MSRs and VMCALL/VMMCALL to it. KVM's VM carries one
/// (Xen's) only through KVM's Xen support and refuses the attach where KVM_CAP_XEN_HVM lacks it.
/// </summary>
public interface IHypervisorInterfaceHost
{
    /// <summary>Attaches the interface; call before creating vCPUs.</summary>
    void AttachHypervisorInterface(IHypervisorInterface hypervisor);
}
