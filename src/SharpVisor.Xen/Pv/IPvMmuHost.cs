namespace SharpVisor.Xen.Pv;

/// <summary>
/// What direct paging needs from the vCPUs that walk the tables: TLB flushes after the updates Xen
/// flushes for, and the new root when a vCPU's kernel L4 changes. Implemented by the PV CPU.
/// </summary>
public interface IPvMmuHost
{
    /// <summary>Drops every cached translation of vCPU <paramref name="vcpuId"/> (-1: all vCPUs).</summary>
    void FlushAll(int vcpuId);

    /// <summary>Drops the translation of <paramref name="linearAddress"/> on vCPU <paramref name="vcpuId"/> (-1: all vCPUs).</summary>
    void FlushPage(int vcpuId, ulong linearAddress);

    /// <summary>The vCPU's kernel (or user) L4 changed: reload CR3 if it runs on that table.</summary>
    void BaseChanged(PvVcpuPaging vcpu);
}
