namespace SharpVisor.Machine;

/// <summary>
/// What KVM's paravirtual hypercalls ask of the machine's vCPUs and local APICs; the software
/// accelerator implements it. APIC ids are the guest's (physical destination mode).
/// </summary>
public interface IKvmParavirtTarget
{
    /// <summary>KVM_HC_KICK_CPU: ends the halt of the vCPU with <paramref name="apicId"/> even with interrupts off (PV unhalt); false if there is none.</summary>
    bool KickCpu(uint apicId);

    /// <summary>
    /// KVM_HC_SEND_IPI: sends the IPI described by <paramref name="icr"/> (vector, fixed or NMI
    /// delivery, trigger) to the local APIC with <paramref name="apicId"/>; false if there is none.
    /// </summary>
    bool SendIpi(uint apicId, ulong icr);

    /// <summary>KVM_HC_SCHED_YIELD: the caller waits for the vCPU with <paramref name="apicId"/> (a lock holder); gives up the host CPU.</summary>
    void YieldTo(uint apicId);
}
