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
}
