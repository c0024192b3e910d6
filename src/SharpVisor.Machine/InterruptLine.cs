namespace SharpVisor.Machine;

/// <summary>One interrupt wire from a device to a GSI of the machine's interrupt controller.</summary>
public sealed class InterruptLine
{
    private readonly IInterruptController _controller;

    public InterruptLine(IInterruptController controller, uint gsi)
    {
        _controller = controller;
        Gsi = gsi;
    }

    public uint Gsi { get; }

    public void Set(bool asserted) => _controller.SetIrqLevel(Gsi, asserted);

    /// <summary>An edge: assert and de-assert, for edge-triggered ISA sources.</summary>
    public void Pulse()
    {
        _controller.SetIrqLevel(Gsi, true);
        _controller.SetIrqLevel(Gsi, false);
    }
}
