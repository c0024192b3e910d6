using System.Collections.Concurrent;

namespace SharpVisor.Emulator.Mmu;

/// <summary>
/// Write tracking of guest frames across a domain's vCPUs (KVM's "page track"). A vCPU tracks a
/// frame while it holds something derived from it — decoded code, or shadow page tables — and
/// must hear about every store to it. Within one vCPU that is its own business (its TLB never
/// grants write tags to such frames); across vCPUs this tracker does it: a frame any vCPU tracks
/// gets no TLB write tag on any vCPU, and a store to it is posted to every other vCPU tracking it.
/// </summary>
/// <remarks>
/// Each vCPU drains its inbox on its own thread at block boundaries, before it runs more guest
/// code: a store on one vCPU is seen by another no later than its next block (and so before it
/// takes the IPI a guest sends after cross-modifying code or page tables). Thread-safe.
/// </remarks>
public sealed class PageTracker
{
    public const int MaxVcpus = 64;

    /// <summary>Events a vCPU may have waiting; beyond that (a vCPU halted for long) it is told to drop everything instead.</summary>
    public const int InboxCapacity = 4096;

    // Frame → mask of the vCPUs tracking it.
    private readonly ConcurrentDictionary<ulong, ulong> _frames = new();
    private readonly object _lock = new();
    private readonly ConcurrentQueue<PageTrackEvent>[] _inboxes = new ConcurrentQueue<PageTrackEvent>[MaxVcpus];
    private readonly int[] _pending = new int[MaxVcpus];
    private readonly int[] _overflowed = new int[MaxVcpus];
    private int _attached;

    /// <summary>Joins a vCPU; returns its index for the other calls.</summary>
    public int Attach()
    {
        lock (_lock)
        {
            if (_attached == MaxVcpus)
            {
                throw new InvalidOperationException($"a page tracker serves at most {MaxVcpus} vCPUs");
            }

            _inboxes[_attached] = new ConcurrentQueue<PageTrackEvent>();
            return _attached++;
        }
    }

    /// <summary>Frames tracked by at least one vCPU.</summary>
    public int TrackedFrames => _frames.Count;

    /// <summary>Whether any vCPU tracks the frame holding <paramref name="physical"/> (stores to it must be reported).</summary>
    public bool IsTracked(ulong physical) => !_frames.IsEmpty && _frames.ContainsKey(physical & SoftTlb.PageMask);

    /// <summary>Whether a vCPU other than <paramref name="vcpu"/> tracks the frame.</summary>
    public bool IsTrackedByOthers(int vcpu, ulong physical) =>
        _frames.TryGetValue(physical & SoftTlb.PageMask, out ulong mask) && (mask & ~(1UL << vcpu)) != 0;

    /// <summary><paramref name="vcpu"/> starts tracking a frame; the first tracker has every other vCPU drop its write tags for it.</summary>
    public void Track(int vcpu, ulong frame)
    {
        frame &= SoftTlb.PageMask;
        ulong bit = 1UL << vcpu;
        bool first;
        lock (_lock)
        {
            _frames.TryGetValue(frame, out ulong mask);
            if ((mask & bit) != 0)
            {
                return;
            }

            first = mask == 0;
            _frames[frame] = mask | bit;
        }

        if (first)
        {
            Broadcast(vcpu, ulong.MaxValue, new PageTrackEvent(PageTrackEventKind.RevokeWrite, frame, 0));
        }
    }

    /// <summary><paramref name="vcpu"/> no longer needs stores to the frame reported.</summary>
    public void Untrack(int vcpu, ulong frame)
    {
        frame &= SoftTlb.PageMask;
        lock (_lock)
        {
            if (_frames.TryGetValue(frame, out ulong mask))
            {
                mask &= ~(1UL << vcpu);
                if (mask == 0)
                {
                    _frames.TryRemove(frame, out _);
                }
                else
                {
                    _frames[frame] = mask;
                }
            }
        }
    }

    /// <summary>A completed store by <paramref name="vcpu"/> (or by a device: any index not tracking) to tracked memory.</summary>
    public void NotifyWrite(int vcpu, ulong physical, int length)
    {
        if (length <= 0 || !_frames.TryGetValue(physical & SoftTlb.PageMask, out ulong mask))
        {
            return;
        }

        Broadcast(vcpu, mask, new PageTrackEvent(PageTrackEventKind.Written, physical, length));
    }

    /// <summary>Whether <paramref name="vcpu"/> has events to drain (a volatile read: cheap enough for every block boundary).</summary>
    public bool HasEvents(int vcpu) => Volatile.Read(ref _pending[vcpu]) != 0;

    /// <summary>
    /// Takes <paramref name="vcpu"/>'s next event. After an overflow the inbox is emptied and a single
    /// <see cref="PageTrackEventKind.Overflow"/> event says everything derived from tracked frames must go.
    /// </summary>
    public bool TryTake(int vcpu, out PageTrackEvent trackEvent)
    {
        Volatile.Write(ref _pending[vcpu], 0);
        if (Interlocked.Exchange(ref _overflowed[vcpu], 0) != 0)
        {
            _inboxes[vcpu].Clear();
            trackEvent = new PageTrackEvent(PageTrackEventKind.Overflow, 0, 0);
            return true;
        }

        if (_inboxes[vcpu].TryDequeue(out trackEvent))
        {
            if (!_inboxes[vcpu].IsEmpty)
            {
                Volatile.Write(ref _pending[vcpu], 1);
            }

            return true;
        }

        return false;
    }

    private void Broadcast(int from, ulong mask, PageTrackEvent trackEvent)
    {
        int count = Volatile.Read(ref _attached);
        for (int i = 0; i < count; i++)
        {
            if (i != from && (mask & (1UL << i)) != 0)
            {
                if (_inboxes[i].Count >= InboxCapacity)
                {
                    Volatile.Write(ref _overflowed[i], 1);
                }
                else
                {
                    _inboxes[i].Enqueue(trackEvent);
                }

                Volatile.Write(ref _pending[i], 1);
            }
        }
    }
}
