using System.Collections.Concurrent;
using System.Runtime.CompilerServices;

namespace SharpVisor.Emulator.Mmu;

/// <summary>
/// One vCPU's part in its machine's <see cref="WriteTracker"/>: it tracks and untracks frames
/// for its code cache and shadow MMU, publishes the stores it makes to tracked frames, and
/// receives the other vCPUs' stores to frames it tracks. Everything but <see cref="Post"/> and
/// the progress counter is used by the owning vCPU's thread only.
/// </summary>
/// <remarks>
/// The race this handles beyond reports: another vCPU may be between checking its TLB write tag
/// and storing when this vCPU begins tracking a frame (revoking the tag cannot stop a store
/// already past the check). Every vCPU therefore counts its progress — odd while it executes
/// guest instructions, advanced at each block boundary — and once every vCPU that was
/// executing when the tags were revoked has moved on, such stores have landed. Until then the
/// frame is "unsettled": for code, a copy of the page taken before decoding is compared with
/// memory at each of the owner's block boundaries, so a racing store drops the blocks before
/// the owner can run one after seeing anything stored later; for a page table, the shadow is
/// re-compared with memory once settled (<see cref="TryTakeSettled"/>). No vCPU ever waits.
/// </remarks>
public sealed class WriteTrackerMember
{
    /// <summary>Queued reports beyond which the vCPU drops all derived state instead (it has not run for a long time).</summary>
    public const int MaxQueuedWrites = 4096;

    private readonly WriteTracker _tracker;
    private readonly ConcurrentQueue<(ulong Address, ulong Length)> _writes = new();
    private readonly List<Unsettled> _unsettled = new();
    private readonly Stack<byte[]> _snapshots = new();
    private readonly ulong _codeBit;
    private readonly ulong _tableBit;
    private readonly bool _sharedBit;
    private int _queued;
    private int _overflow;
    private int _pending;
    private long _progress;
    private int _guestDepth;

    internal WriteTrackerMember(WriteTracker tracker, int index, SoftTlb tlb)
    {
        _tracker = tracker;
        Index = index;
        Tlb = tlb;
        BitIndex = Math.Min(index, WriteTracker.SharedBit);
        _sharedBit = BitIndex == WriteTracker.SharedBit;
        _codeBit = 1UL << BitIndex;
        _tableBit = _codeBit << 32;
    }

    /// <summary>Odd while the owner executes guest instructions; advanced at each block boundary.</summary>
    internal long Progress => Volatile.Read(ref _progress);

    /// <summary>Join order in the tracker.</summary>
    public int Index { get; }

    /// <summary>The TLB whose write tags the tracker revokes for tracked frames.</summary>
    public SoftTlb Tlb { get; }

    public WriteTracker Tracker => _tracker;

    internal int BitIndex { get; }

    /// <summary>Whether reports, overflow or unsettled frames wait for <see cref="BeginService"/>: the block-boundary check.</summary>
    public bool HasWork
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Volatile.Read(ref _pending) != 0;
    }

    /// <summary>Whether some vCPU tracks the frame of <paramref name="physicalAddress"/>.</summary>
    public bool IsTracked(ulong physicalAddress) => _tracker.IsTracked(physicalAddress);

    /// <summary>
    /// Starts tracking a frame: from now on no TLB of the machine holds a write tag for it and
    /// every store to it is reported to this vCPU. Call before reading what will be derived from
    /// the frame (decoding code, walking a table).
    /// </summary>
    public void Track(ulong frame, TrackReason reason)
    {
        frame &= SoftTlb.PageMask;
        ref ulong word = ref _tracker.WordFor(frame >> 12, create: true, out bool exists);
        if (!exists)
        {
            return; // beyond any RAM: no store can reach it through a TLB
        }

        ulong bit = reason == TrackReason.Code ? _codeBit : _tableBit;
        if ((Volatile.Read(ref word) & bit) != 0 && !_sharedBit)
        {
            return;
        }

        // Publish the bit before revoking (a full fence): a TLB fill racing with us either sees
        // it, or has stored its tag before we scan and loses it here.
        Interlocked.Or(ref word, bit);
        WriteTrackerMember[] members = _tracker.Members;
        long[]? progress = null;
        foreach (WriteTrackerMember member in members)
        {
            member.Tlb.RevokeWrite(frame);
            long p = member == this ? 0 : Volatile.Read(ref member._progress);
            if ((p & 1) != 0)
            {
                progress ??= new long[members.Length];
                progress[member.Index] = p;
            }
        }

        if (progress is null)
        {
            return;
        }

        // Another vCPU is executing: a store of its may be past its tag check.
        _unsettled.Add(new Unsettled(frame, reason, progress, reason == TrackReason.Code ? Snapshot(frame) : null));
        Volatile.Write(ref _pending, 1);
    }

    /// <summary>Stops tracking a frame for <paramref name="reason"/> (this vCPU derived nothing from it any more).</summary>
    public void Untrack(ulong frame, TrackReason reason)
    {
        if (_sharedBit)
        {
            return;
        }

        ref ulong word = ref _tracker.WordFor((frame & SoftTlb.PageMask) >> 12, create: false, out bool exists);
        if (exists)
        {
            Interlocked.And(ref word, ~(reason == TrackReason.Code ? _codeBit : _tableBit));
        }
    }

    /// <summary>After this vCPU stored to a tracked frame: queues the store for the other vCPUs tracking it.</summary>
    public void Publish(ulong physicalAddress, ulong length) => _tracker.Publish(this, physicalAddress, length);

    /// <summary>Queues another vCPU's store for this one (any thread).</summary>
    internal void Post(ulong physicalAddress, ulong length)
    {
        if (Volatile.Read(ref _overflow) == 0)
        {
            if (Interlocked.Increment(ref _queued) <= MaxQueuedWrites)
            {
                _writes.Enqueue((physicalAddress, length));
            }
            else
            {
                Interlocked.Decrement(ref _queued);
                Volatile.Write(ref _overflow, 1);
            }
        }

        Volatile.Write(ref _pending, 1);
    }

    /// <summary>Starts applying what waits (owner thread): true when reports overflowed and all derived state must go.</summary>
    public bool BeginService()
    {
        Interlocked.Exchange(ref _pending, 0);
        if (Interlocked.Exchange(ref _overflow, 0) == 0)
        {
            return false;
        }

        while (TryTakeWrite(out _, out _))
        {
        }

        return true;
    }

    /// <summary>The next store another vCPU made to a frame this one tracks (owner thread).</summary>
    public bool TryTakeWrite(out ulong physicalAddress, out ulong length)
    {
        if (_writes.TryDequeue(out (ulong Address, ulong Length) write))
        {
            Interlocked.Decrement(ref _queued);
            (physicalAddress, length) = write;
            return true;
        }

        physicalAddress = length = 0;
        return false;
    }

    /// <summary>
    /// The next unsettled frame that needs the owner (owner thread, at a block boundary): a code
    /// frame whose memory no longer matches the copy taken before decoding (drop its blocks), or
    /// a page-table frame whose racing stores have all landed (re-compare its shadow with memory).
    /// Code frames that settled unchanged are dropped silently; frames not settled yet keep
    /// <see cref="HasWork"/> set.
    /// </summary>
    public bool TryTakeSettled(out ulong frame, out TrackReason reason)
    {
        for (int i = 0; i < _unsettled.Count; i++)
        {
            Unsettled u = _unsettled[i];
            bool changed = u.Reason == TrackReason.Code && HasChanged(u);
            if (!changed && !IsSettled(u.Progress))
            {
                continue;
            }

            _unsettled.RemoveAt(i--);
            if (u.Snapshot is not null && _snapshots.Count < 16)
            {
                _snapshots.Push(u.Snapshot);
            }

            if (u.Reason == TrackReason.PageTable || changed)
            {
                (frame, reason) = (u.Frame, u.Reason);
                return true;
            }
        }

        if (_unsettled.Count != 0)
        {
            Volatile.Write(ref _pending, 1);
        }

        frame = 0;
        reason = default;
        return false;
    }

    /// <summary>The owner starts executing guest instructions (Run, event delivery): its stores may race with tracking.</summary>
    public void EnterGuest()
    {
        if (_guestDepth++ == 0)
        {
            Volatile.Write(ref _progress, _progress + 1);
        }
    }

    /// <summary>The owner stopped executing guest instructions: every store it made has landed.</summary>
    public void LeaveGuest()
    {
        if (--_guestDepth == 0)
        {
            Volatile.Write(ref _progress, _progress + 1);
        }
    }

    /// <summary>A block boundary: stores of the previous block have landed. True when work waits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool PassBoundary()
    {
        Volatile.Write(ref _progress, _progress + 2);
        return Volatile.Read(ref _pending) != 0;
    }

    private bool IsSettled(long[] progress)
    {
        WriteTrackerMember[] members = _tracker.Members;
        for (int i = 0; i < progress.Length; i++)
        {
            if (progress[i] != 0 && Volatile.Read(ref members[i]._progress) == progress[i])
            {
                return false;
            }
        }

        return true;
    }

    private unsafe bool HasChanged(Unsettled u) =>
        u.Snapshot is null
        || !_tracker.Memory.TryTranslate(u.Frame, 4096, out nint host)
        || !new ReadOnlySpan<byte>((void*)host, 4096).SequenceEqual(u.Snapshot);

    /// <summary>A copy of the frame as tracking begins (null: not RAM; treated as changed).</summary>
    private unsafe byte[]? Snapshot(ulong frame)
    {
        if (!_tracker.Memory.TryTranslate(frame, 4096, out nint host))
        {
            return null;
        }

        byte[] copy = _snapshots.Count != 0 ? _snapshots.Pop() : new byte[4096];
        new ReadOnlySpan<byte>((void*)host, 4096).CopyTo(copy);
        return copy;
    }

    private readonly record struct Unsettled(ulong Frame, TrackReason Reason, long[] Progress, byte[]? Snapshot);
}
