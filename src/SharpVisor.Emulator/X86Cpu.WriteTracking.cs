using SharpVisor.Emulator.Mmu;

namespace SharpVisor.Emulator;

/// <summary>
/// Coherence with the other vCPUs of the machine: stores to write-tracked frames (decoded code,
/// shadowed page tables) are applied here and published to the other vCPUs tracking the frame;
/// their stores arrive as reports applied at this CPU's block boundaries (see <see cref="WriteTracker"/>).
/// </summary>
public sealed unsafe partial class X86Cpu
{
    private WriteTrackerMember _tracking = null!;

    /// <summary>After a store to a write-tracked frame: drop this CPU's stale blocks and shadows, and tell the others.</summary>
    private void OnTrackedStore(ulong physical, int length)
    {
        InvalidateCode(physical, (ulong)length);
        _mmu.OnGuestPhysicalWrite(physical, length);
        _tracking.Publish(physical, (ulong)length);
    }

    /// <summary>At a block boundary: applies the other vCPUs' stores to frames this CPU tracks, and settles racing ones.</summary>
    private void ServiceWriteTracking()
    {
        if (_tracking.BeginService())
        {
            // Too many reports piled up while this CPU did not run: drop everything derived from memory.
            FlushCodeCache();
            _mmu.Reset();
        }

        while (_tracking.TryTakeWrite(out ulong physical, out ulong length))
        {
            InvalidateCode(physical, length);
            _mmu.OnGuestPhysicalWrite(physical, (int)Math.Min(length, int.MaxValue));
        }

        // Frames tracked while another vCPU's store to them could still land.
        while (_tracking.TryTakeSettled(out ulong frame, out TrackReason reason))
        {
            if (reason == TrackReason.Code)
            {
                InvalidateCodePage(frame); // such a store did land: what was decoded may be stale
            }
            else
            {
                _mmu.RecheckFrame(frame);
            }
        }
    }
}
