using SharpVisor.Machine;
using SharpVisor.Memory;

namespace SharpVisor.Machine.Tests;

/// <summary>The parts of a machine the runner uses: its control. Nothing else is reachable.</summary>
internal sealed class FakeMachine : IVirtualMachine
{
    public GuestMemory Memory => throw new NotSupportedException();

    public PortIoBus PortIo { get; } = new();

    public MmioBus Mmio { get; } = new();

    public IInterruptController Interrupts => throw new NotSupportedException();

    public MachineControl Control { get; } = new();

    public IHypercallHandler? Hypercalls { get; set; }

    /// <summary>No accelerator: no CMOS RTC, nothing to snapshot.</summary>
    public MachineCapabilities Capabilities { get; } = new() { Accelerator = "fake" };

    public IVcpu CreateVcpu(int id) => new ScriptedVcpu(id);

    public void Dispose()
    {
    }
}
