namespace SharpVisor.Machine.Hypervisor;

/// <summary>The hypercall instruction of a CPU vendor: VMCALL (Intel) or VMMCALL (AMD, Hygon).</summary>
public enum HypercallInstruction
{
    Vmcall,
    Vmmcall,
}
