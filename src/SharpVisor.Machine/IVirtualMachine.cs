using SharpVisor.Memory;

namespace SharpVisor.Machine;

/// <summary>
/// A machine built on one accelerator: guest memory, the I/O buses devices register on,
/// the interrupt controller, and its vCPUs.
/// </summary>
public interface IVirtualMachine : IDisposable
{
    GuestMemory Memory { get; }

    PortIoBus PortIo { get; }

    MmioBus Mmio { get; }

    IInterruptController Interrupts { get; }

    MachineControl Control { get; }

    /// <summary>
    /// Answers the guest's VMCALL/VMMCALL (<see cref="IHypercallHandler"/>). The software accelerator
    /// starts with KVM's ABI (<see cref="KvmHypercalls"/>); null on KVM, whose kernel answers its own
    /// ABI. Set it before the vCPUs run to give the guest another ABI.
    /// </summary>
    IHypercallHandler? Hypercalls { get; set; }

    /// <summary>What this machine's accelerator brings (the VMM's platform facts).</summary>
    MachineCapabilities Capabilities { get; }

    /// <summary>Creates vCPU <paramref name="id"/> (0 is the boot processor).</summary>
    IVcpu CreateVcpu(int id);

    /// <summary>Stops the guest's virtual time while the machine is paused; nothing where time is the host's (KVM).</summary>
    void PauseTime()
    {
    }

    /// <summary>Restarts virtual time after <see cref="PauseTime"/>.</summary>
    void ResumeTime()
    {
    }
}
