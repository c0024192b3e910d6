using SharpVisor.Emulator.Mmu;

namespace SharpVisor.Emulator;

/// <summary>
/// Coherence with the domain's other vCPUs: frames this CPU derives something from (decoded
/// code, its MMU's shadow page tables) are tracked in the shared <see cref="Mmu.PageTracker"/>,
/// stores to frames others track are posted to them, and their stores reach this CPU at its
/// next block boundary.
/// </summary>
public sealed partial class X86Cpu
{
    private PageTracker? _pageTracker;
    private int _pageTrackerIndex;

    /// <summary>
    /// The domain's page tracker, shared by all its vCPUs (SMP guests); set once, before running.
    /// Without one the CPU is coherent only with itself, which is all a single vCPU needs.
    /// </summary>
    public PageTracker? PageTracker
    {
        get => _pageTracker;
        set
        {
            if (_pageTracker is not null || value is null)
            {
                throw new InvalidOperationException("a CPU joins one page tracker, once");
            }

            _pageTrackerIndex = value.Attach();
            _pageTracker = value;
            _mmu.FrameTrackingChanged = OnMmuFrameTracking;
            foreach (ulong page in _codePages.Keys)
            {
                value.Track(_pageTrackerIndex, page);
            }
        }
    }

    private void OnMmuFrameTracking(ulong frame, bool tracked)
    {
        if (tracked)
        {
            _pageTracker?.Track(_pageTrackerIndex, frame);
        }
        else if (!IsCodePage(frame))
        {
            _pageTracker?.Untrack(_pageTrackerIndex, frame);
        }
    }

    /// <summary>This CPU caches decoded code from <paramref name="physicalPage"/> now.</summary>
    private void TrackCodePage(ulong physicalPage) => _pageTracker?.Track(_pageTrackerIndex, physicalPage);

    /// <summary>This CPU no longer caches code from <paramref name="physicalPage"/>.</summary>
    private void UntrackCodePage(ulong physicalPage)
    {
        if (_pageTracker is not null && !_mmu.IsWriteTracked(physicalPage))
        {
            _pageTracker.Untrack(_pageTrackerIndex, physicalPage);
        }
    }

    /// <summary>Whether another vCPU needs to hear about stores to <paramref name="physicalPage"/>.</summary>
    private bool IsTrackedElsewhere(ulong physicalPage) =>
        _pageTracker is { } tracker && tracker.IsTrackedByOthers(_pageTrackerIndex, physicalPage);

    /// <summary>Applies what other vCPUs did to frames this one tracks (at block boundaries, on this CPU's thread).</summary>
    private void DrainPageTrackEvents()
    {
        PageTracker tracker = _pageTracker!;
        while (tracker.TryTake(_pageTrackerIndex, out PageTrackEvent e))
        {
            switch (e.Kind)
            {
                case PageTrackEventKind.RevokeWrite:
                    _tlb.RevokeWrite(e.Address);
                    break;
                case PageTrackEventKind.Written:
                    InvalidateCode(e.Address, (ulong)e.Length);
                    _mmu.OnGuestPhysicalWrite(e.Address, e.Length);
                    break;
                default:
                    _mmu.Reset();
                    FlushCodeCache();
                    FlushJumpCache();
                    break;
            }
        }
    }
}
