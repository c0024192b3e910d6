namespace SharpVisor.Emulator;

/// <summary>
/// What a <see cref="X86Cpu"/> asks of the machine around it: the software accelerator
/// implements this with its local APIC, kvmclock and time base. A CPU without one (the
/// differential tests) keeps its own TSC and reports only the core's MSRs and CPUID leaves.
/// </summary>
public interface ICpuPlatform
{
    /// <summary>MSRs the core does not own (x2APIC 0x800-0x8FF, TSC deadline, kvmclock, ...); false raises #GP.</summary>
    bool TryReadMsr(X86Cpu cpu, uint index, out ulong value);

    /// <summary>Writes an MSR the core does not own; false raises #GP.</summary>
    bool TryWriteMsr(X86Cpu cpu, uint index, ulong value);

    /// <summary>The time-stamp counter for RDTSC, RDTSCP and IA32_TSC reads (one clock for every vCPU).</summary>
    ulong ReadTsc();

    /// <summary>
    /// Adds or adjusts a CPUID leaf after the <see cref="CpuModel"/> answered: the hypervisor
    /// leaves 0x40000000 and up, the APIC id, the hypervisor, x2APIC and TSC-deadline bits.
    /// </summary>
    void AdjustCpuid(X86Cpu cpu, uint leaf, uint subleaf, ref uint eax, ref uint ebx, ref uint ecx, ref uint edx);

    /// <summary>CR8 reads: the local APIC's task priority (TPR bits 7:4).</summary>
    ulong ReadCr8(X86Cpu cpu);

    /// <summary>CR8 writes: sets the local APIC's task priority.</summary>
    void WriteCr8(X86Cpu cpu, ulong value);

    /// <summary>
    /// VMCALL or VMMCALL in the guest: runs a hypercall through the machine's hypervisor interface
    /// (Xen) or its hypercall handler (KVM's ABI) and returns true, or returns false when the
    /// machine has neither (the instruction then raises #UD, as on bare metal).
    /// </summary>
    bool TryHypercall(X86Cpu cpu) => false;

    /// <summary>
    /// SYSCALL in a paravirtualized domain (Xen PV): the hypervisor takes it (a hypercall from the
    /// guest kernel, a system call from its user mode) and returns true; false runs the instruction
    /// architecturally.
    /// </summary>
    bool TryParavirtualSyscall(X86Cpu cpu, ulong returnRip) => false;

    /// <summary>An exception or interrupt in a paravirtualized domain: true when the hypervisor delivered it (bounced to the guest kernel), false for the IDT.</summary>
    bool TryParavirtualEvent(X86Cpu cpu, SharpVisor.Machine.Hypervisor.ParavirtualEvent e) => false;
}
