namespace SharpVisor.Boot.Acpi;

/// <summary>One _PRT entry: INTx# <see cref="Pin"/> (1 = INTA#) of device <see cref="Slot"/> on bus 0 drives <see cref="Gsi"/>.</summary>
public readonly record struct AcpiPciRoute(int Slot, int Pin, uint Gsi);
