namespace SharpVisor.Machine.Hypervisor;

/// <summary>
/// An accelerator whose kernel takes part in a Xen HVM/PVH guest's interface (KVM with
/// KVM_CAP_XEN_HVM), implemented by its <see cref="IHypervisorHost"/>. The Xen layer still owns the
/// interface (hypercalls, event channels, timers) and tells the kernel where the guest put its shared
/// pages and which vectors it asked for; the kernel then injects the domain's callback vector while a
/// vcpu_info's evtchn_upcall_pending is set and keeps the vcpu_time_info there current. Callable from
/// any vCPU's thread; the accelerator applies a vCPU's settings on that vCPU's thread.
/// </summary>
public interface IXenKernelAssist
{
    /// <summary>shared_info is now at guest-physical <paramref name="address"/> (page-aligned).</summary>
    void SharedInfoPlaced(ulong address);

    /// <summary>vCPU <paramref name="vcpuId"/>'s vcpu_info is now at <paramref name="address"/>; 0: it has none.</summary>
    void VcpuInfoPlaced(int vcpuId, ulong address);

    /// <summary>HVM_PARAM_CALLBACK_IRQ: the domain-wide callback vector, 0 when the callback is not a vector.</summary>
    void CallbackVectorChanged(byte vector);

    /// <summary>HVMOP_set_evtchn_upcall_vector: vCPU <paramref name="vcpuId"/>'s own vector (it takes precedence).</summary>
    void VcpuUpcallVectorChanged(int vcpuId, byte vector);
}
