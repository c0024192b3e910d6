namespace SharpVisor.Machine.Hypervisor;

/// <summary>A hypervisor interface that may run its domain paravirtualized: the accelerator asks when it creates the vCPUs.</summary>
public interface IParavirtualCpuProvider
{
    /// <summary>The PV CPU of this domain, or null when the domain is not paravirtualized (PVH, HVM).</summary>
    IParavirtualCpu? ParavirtualCpu { get; }
}
