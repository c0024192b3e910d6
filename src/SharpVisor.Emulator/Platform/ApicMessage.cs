namespace SharpVisor.Emulator.Platform;

/// <summary>
/// One interrupt message on the APIC bus: an IPI from a local APIC's ICR, an I/O APIC
/// redirection, or a decoded MSI.
/// </summary>
/// <param name="Vector">Interrupt vector (ignored for NMI and INIT).</param>
/// <param name="DeliveryMode">How the destination handles it.</param>
/// <param name="LogicalDestination">Destination mode: logical (true) or physical (false).</param>
/// <param name="Destination">APIC ID (physical) or logical mask: 8 bits in xAPIC form, 32 in x2APIC form.</param>
/// <param name="LevelTriggered">Trigger mode: level (true) or edge (false).</param>
/// <param name="Assert">The level bit: false only for an INIT level de-assert.</param>
/// <param name="Shorthand">ICR destination shorthand; <see cref="ApicDestinationShorthand.None"/> for I/O APIC and MSI.</param>
/// <param name="Source">The sending local APIC for IPIs (self/all-excluding-self), null otherwise.</param>
public readonly record struct ApicMessage(
    int Vector,
    ApicDeliveryMode DeliveryMode,
    bool LogicalDestination,
    uint Destination,
    bool LevelTriggered = false,
    bool Assert = true,
    ApicDestinationShorthand Shorthand = ApicDestinationShorthand.None,
    LocalApic? Source = null)
{
    /// <summary>True for IPIs; I/O APIC and MSI messages carry 8-bit destinations where 0xFF means broadcast.</summary>
    public bool IsIpi => Source is not null;
}
