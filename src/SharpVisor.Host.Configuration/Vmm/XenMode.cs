namespace SharpVisor.Host.Vmm;

/// <summary>Whether the guest runs as a Xen domain, and which kind (docs/xen.md).</summary>
public enum XenMode
{
    /// <summary>A plain PC guest (virtio devices, KVM's paravirtual leaves).</summary>
    None,

    /// <summary>A PVH domain: entered at the kernel's PVH entry with hvm_start_info, Xen's hypercalls and PV console.</summary>
    Pvh,

    /// <summary>
    /// An HVM domain with PV drivers ("PVHVM"): the PC machine booted as usual, plus Xen's CPUID
    /// leaves, hypercalls and the Xen platform PCI device, so the kernel's PV drivers take over.
    /// </summary>
    Hvm,

    /// <summary>A PV domain (docs/xen-pv.md): the kernel at CPL 3 with direct paging, start_info, hypercalls by SYSCALL.</summary>
    Pv,

    /// <summary>
    /// A driver domain (docs/xen.md, "Driver domains"): no guest and no vCPU; its kernel is
    /// SharpVisor's blkback, serving other domains' vbds through the inter-domain link only.
    /// </summary>
    Driver,
}
