namespace SharpVisor.Machine.Hypervisor;

/// <summary>What a hypervisor interface needs from the accelerator under it.</summary>
public interface IHypervisorHost
{
    /// <summary>The instruction the guest's CPU vendor uses for hypercalls (for the hypercall page).</summary>
    HypercallInstruction Instruction { get; }

    /// <summary>The guest's time-stamp counter now (the same clock RDTSC reads).</summary>
    ulong ReadTsc();

    /// <summary>The TSC's frequency in Hz.</summary>
    long TscFrequencyHz { get; }

    /// <summary>
    /// Makes <paramref name="vcpuId"/> look at its pending upcall soon: wakes it from HLT and ends
    /// its current run slice. Callable from any thread.
    /// </summary>
    void WakeVcpu(int vcpuId);

    /// <summary>Stops the machine (the guest's shutdown hypercall).</summary>
    MachineControl Control { get; }

    /// <summary>
    /// Starts vCPU <paramref name="vcpuId"/> the paravirtual way (Xen PV's VCPUOP_up: no INIT/SIPI):
    /// with <paramref name="state"/> when given (its first start: it leaves wait-for-SIPI), else where
    /// <see cref="StopVcpu"/> parked it. Callable from another vCPU's thread.
    /// </summary>
    void StartVcpu(int vcpuId, VcpuState? state);

    /// <summary>Parks vCPU <paramref name="vcpuId"/> at its next instruction boundary until <see cref="StartVcpu"/> (VCPUOP_down).</summary>
    void StopVcpu(int vcpuId);

    /// <summary>
    /// Drops every cached translation of vCPU <paramref name="vcpuId"/> before it runs another
    /// instruction (a remote TLB flush, asked by vCPU <paramref name="callerVcpuId"/>); returns once
    /// the target cannot use a stale translation any more.
    /// </summary>
    void FlushVcpuTlb(int vcpuId, int callerVcpuId);
}
