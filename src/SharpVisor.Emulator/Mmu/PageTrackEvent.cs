namespace SharpVisor.Emulator.Mmu;

/// <summary>
/// What a <see cref="PageTracker"/> tells a vCPU: drop write tags for a frame another vCPU now
/// tracks, or a store another vCPU made to a frame this one tracks (address and length).
/// </summary>
public readonly record struct PageTrackEvent(PageTrackEventKind Kind, ulong Address, int Length);
