namespace SharpVisor.Emulator.Mmu;

/// <summary>The kinds of <see cref="PageTrackEvent"/>.</summary>
public enum PageTrackEventKind
{
    /// <summary>Another vCPU started tracking the frame at <see cref="PageTrackEvent.Address"/>: stores to it must come to the MMU.</summary>
    RevokeWrite,

    /// <summary>Another vCPU stored <see cref="PageTrackEvent.Length"/> bytes at <see cref="PageTrackEvent.Address"/>.</summary>
    Written,

    /// <summary>Events were lost (the vCPU did not drain its inbox for long): drop every code and shadow cache.</summary>
    Overflow,
}
