namespace SharpVisor.Kvm;

/// <summary>
/// What a Xen hypercall on KVM reaches beyond the KVM_EXIT_XEN record: the vCPU's other registers
/// (KVM_GET_REGS/KVM_SET_REGS), the guest's page tables (KVM_TRANSLATE) and halting. The vCPU
/// implements it on its own thread during the exit; tests give a fake register file.
/// </summary>
public interface IKvmXenVcpuAccess
{
    /// <summary>A general register by its encoding number (0 RAX, 1 RCX, 2 RDX, 3 RBX, ... 15 R15).</summary>
    ulong GetRegister(int index);

    void SetRegister(int index, ulong value);

    /// <summary>
    /// The guest-physical address of linear address <paramref name="linear"/> as the vCPU's paging
    /// sees it; false when it does not translate, or <paramref name="write"/> and the page is read-only.
    /// </summary>
    bool TryTranslate(ulong linear, bool write, out ulong physical);

    /// <summary>Halts the vCPU once the hypercall returns (KVM_MP_STATE_HALTED: KVM wakes it for an interrupt).</summary>
    void HaltAfterHypercall();
}
