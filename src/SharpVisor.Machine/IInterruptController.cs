namespace SharpVisor.Machine;

/// <summary>
/// The machine's interrupt inputs: GSIs of the I/O APIC (ISA IRQs 0-15 are GSIs 0-15, also
/// wired to the 8259 pair) and message-signalled interrupts.
/// </summary>
public interface IInterruptController
{
    /// <summary>Drives the level of a GSI. Edge-triggered sources assert then de-assert.</summary>
    void SetIrqLevel(uint gsi, bool asserted);

    /// <summary>Delivers an MSI: address and data as a PCI device writes them.</summary>
    void SignalMsi(ulong address, uint data);
}
