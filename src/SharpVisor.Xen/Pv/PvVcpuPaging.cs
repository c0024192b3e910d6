namespace SharpVisor.Xen.Pv;

/// <summary>
/// One PV vCPU's page-table roots: the kernel L4 (MMUEXT_NEW_BASEPTR) and the user L4
/// (MMUEXT_NEW_USER_BASEPTR), machine frames each holding an L4 type reference while installed.
/// Entering the guest kernel loads <see cref="KernelBase"/> into CR3, returning to user mode <see cref="UserBase"/>.
/// </summary>
public sealed class PvVcpuPaging
{
    public PvVcpuPaging(int vcpuId) => VcpuId = vcpuId;

    public int VcpuId { get; }

    /// <summary>The kernel L4's machine frame; 0 = none yet.</summary>
    public ulong KernelBase { get; internal set; }

    /// <summary>The user L4's machine frame; 0 = none (Xen then runs user mode on the kernel table).</summary>
    public ulong UserBase { get; internal set; }

    /// <summary>
    /// MMUEXT_SET_LDT: the guest's LDT (linear address, entries); 0 entries = none. Recorded only:
    /// an LDT selector is never loadable here (the PV GDT refuses LDT descriptors), so a guest that
    /// uses one gets the #GP, and Linux, which only clears its LDT, runs as on Xen.
    /// </summary>
    public ulong LdtBase { get; internal set; }

    public uint LdtEntries { get; internal set; }
}
