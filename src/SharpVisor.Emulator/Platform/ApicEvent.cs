namespace SharpVisor.Emulator.Platform;

/// <summary>One event taken from a local APIC by <see cref="LocalApic.TryTakeEvent"/>.</summary>
public readonly record struct ApicEvent(ApicEventKind Kind, int Vector);
