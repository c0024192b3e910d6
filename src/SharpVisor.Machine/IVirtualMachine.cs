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

    /// <summary>Creates vCPU <paramref name="id"/> (0 is the boot processor).</summary>
    IVcpu CreateVcpu(int id);
}
