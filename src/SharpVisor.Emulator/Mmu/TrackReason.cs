namespace SharpVisor.Emulator.Mmu;

/// <summary>Why a vCPU write-tracks a guest frame (see <see cref="WriteTracker"/>).</summary>
public enum TrackReason
{
    /// <summary>The vCPU has decoded blocks from the frame: stores to it must drop them.</summary>
    Code = 0,

    /// <summary>The vCPU's shadow MMU shadows a page table in the frame: stores to it must update the shadow.</summary>
    PageTable = 1,
}
