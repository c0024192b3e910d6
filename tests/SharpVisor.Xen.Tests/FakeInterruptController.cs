using SharpVisor.Machine;

namespace SharpVisor.Xen.Tests;

/// <summary>The machine's interrupt inputs for tests: every GSI level change, in order.</summary>
internal sealed class FakeInterruptController : IInterruptController
{
    public List<(uint Gsi, bool Asserted)> Changes { get; } = [];

    public void SetIrqLevel(uint gsi, bool asserted) => Changes.Add((gsi, asserted));

    public void SignalMsi(ulong address, uint data)
    {
    }
}
