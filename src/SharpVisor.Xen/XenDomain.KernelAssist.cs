using SharpVisor.Machine.Hypervisor;

namespace SharpVisor.Xen;

/// <summary>
/// What an accelerator with in-kernel Xen support (KVM's, <see cref="IXenKernelAssist"/>) is told:
/// where shared_info and each vcpu_info are and which vectors the guest asked for. The emulator's host
/// is not an <see cref="IXenKernelAssist"/>, so none of this runs there.
/// </summary>
public sealed partial class XenDomain
{
    private IXenKernelAssist? KernelAssist => _host as IXenKernelAssist;

    /// <summary>shared_info moved: so did the vcpu_info of every vCPU that did not register its own.</summary>
    private void AssistSharedInfo(ulong address)
    {
        if (KernelAssist is not { } assist)
        {
            return;
        }

        assist.SharedInfoPlaced(address);
        foreach (XenVcpu vcpu in _vcpus)
        {
            assist.VcpuInfoPlaced(vcpu.Id, VcpuInfoAddress(vcpu));
        }
    }

    private void AssistVcpuInfo(XenVcpu vcpu, ulong address) => KernelAssist?.VcpuInfoPlaced(vcpu.Id, address);

    private void AssistCallbackVia(ulong via) =>
        KernelAssist?.CallbackVectorChanged(via >> HvmParam.CallbackTypeShift == HvmParam.CallbackTypeVector ? (byte)via : (byte)0);

    private void AssistUpcallVector(int vcpuId, byte vector) => KernelAssist?.VcpuUpcallVectorChanged(vcpuId, vector);
}
