namespace SharpVisor.Emulator.Platform;

/// <summary>
/// The 8259 as seen from a local APIC's LINT0 in ExtINT mode (or from the CPU's INTR pin when the
/// APIC is hardware-disabled): an output line and the INTA cycle that supplies the vector.
/// </summary>
public interface IExternalInterruptSource
{
    /// <summary>The INT output: an unmasked request is waiting.</summary>
    bool OutputAsserted { get; }

    /// <summary>The vector the next INTA cycle would return, without acknowledging it.</summary>
    int? PeekVector();

    /// <summary>The INTA cycle: acknowledges the highest-priority request and returns its vector.</summary>
    int? AcknowledgeInterrupt();
}
