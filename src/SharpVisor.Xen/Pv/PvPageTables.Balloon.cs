namespace SharpVisor.Xen.Pv;

/// <summary>
/// The PV balloon (xen/common/memory.c for a domain that is not translated): decrease_reservation
/// takes machine frames away from the domain into the hypervisor's free pool, populate_physmap
/// hands frames of that pool out as new machine frames and records them in the M2P. The pool is
/// the frames given back: a domain can only ever get back as much as it gave (there is no memory
/// beyond the machine the VMM built).
/// </summary>
public sealed partial class PvPageTables
{
    /// <summary>Frames the domain gave back: the hypervisor's, handed out by populate_physmap (last given, first taken).</summary>
    private readonly Stack<ulong> _freeFrames = new();

    /// <summary>Hypervisor pages shared with the domain (<see cref="AddDomainFrame"/>): the domain's to map, never to give back.</summary>
    private readonly HashSet<ulong> _sharedFrames = [];

    /// <summary>Machine frames in the free pool.</summary>
    public int FreeFrameCount
    {
        get
        {
            lock (_lock)
            {
                return _freeFrames.Count;
            }
        }
    }

    /// <summary>
    /// Frames the domain gave back and has not populated again: the free pool and the pool's frames
    /// standing in for grant maps (a granted page is not the mapper's, as on Xen).
    /// </summary>
    public int GivenBackCount
    {
        get
        {
            lock (_lock)
            {
                return _freeFrames.Count + _grantMappings.Count;
            }
        }
    }

    /// <summary>
    /// decrease_reservation of machine frame <paramref name="mfn"/> (guest_remove_page): a frame that
    /// is not memory is -EINVAL, one that is not the domain's (or a hypervisor page shared with it)
    /// -ENXIO, as Xen's failed get_page. A frame in use — mapped, typed, pinned — is -EBUSY here: Xen
    /// takes it and frees it when its last reference goes, which would leave the domain using a
    /// frame it no longer owns in our accounting. Otherwise the frame leaves the domain: not owned,
    /// its M2P entry (and the P2M entry that named it) invalid, its host page released by
    /// <paramref name="discard"/>, and it joins the free pool. 0 or a negative errno.
    /// </summary>
    public int TryReleaseFrame(ulong mfn, Action discard)
    {
        ArgumentNullException.ThrowIfNull(discard);
        lock (_lock)
        {
            if (mfn >= (ulong)_frames.Length || !_memory.IsValid(mfn << 12, 4096))
            {
                return Refuse(XenErrno.EINVAL, "release-invalid", $"decrease_reservation of machine frame 0x{mfn:x}: not memory");
            }

            if (!_frames[mfn].Owned || _sharedFrames.Contains(mfn))
            {
                return Refuse(XenErrno.ENXIO, "release-not-owned", $"decrease_reservation of machine frame 0x{mfn:x}: not the domain's");
            }

            if (_frames[mfn].ReferenceCount != 0 || _frames[mfn].TypeCount != 0 || _frames[mfn].Pinned)
            {
                Counters.Increment("pv-refused-reservation-frame-in-use");
                return Refuse(XenErrno.EBUSY, "release-in-use", $"decrease_reservation of machine frame 0x{mfn:x}: in use as {_frames[mfn].Type} ({_frames[mfn].TypeCount}/{_frames[mfn].ReferenceCount})");
            }

            ulong pfn = _physToMachine.ToPhysical(mfn);
            if (pfn < (ulong)_physToMachine.PageCount && _physToMachine.P2m[(int)pfn] == mfn)
            {
                _physToMachine.SetMachine(pfn, PvPhysToMachine.InvalidEntry);
            }

            SetM2p(mfn, PvPhysToMachine.InvalidEntry);
            _frames[mfn] = default;
            discard();
            _freeFrames.Push(mfn);
            Counters.Increment("pv-balloon-released");
            return 0;
        }
    }

    /// <summary>
    /// populate_physmap of pseudo-physical frame <paramref name="pfn"/>: a frame from the free pool
    /// becomes the domain's again, zeroed by <paramref name="zero"/>, with M2P[mfn] = pfn (Xen's
    /// set_gpfn_from_mfn) and our P2M entry pfn → mfn; the guest learns the mfn from the extent list
    /// and updates its own P2M and mappings. -EINVAL for a pfn past the domain's pages (Xen would
    /// record any value in the M2P; a PV Linux only populates the pfns it ballooned out), -ENOMEM
    /// when the pool is empty (Xen's failed alloc_domheap_pages ends the batch).
    /// </summary>
    public int TryTakeFrame(ulong pfn, Action<ulong> zero, out ulong mfn)
    {
        ArgumentNullException.ThrowIfNull(zero);
        mfn = 0;
        lock (_lock)
        {
            if (pfn >= (ulong)_physToMachine.PageCount)
            {
                return Refuse(XenErrno.EINVAL, "populate-pfn", $"populate_physmap of pfn 0x{pfn:x}: past the domain's {_physToMachine.PageCount} pages");
            }

            if (!_freeFrames.TryPop(out mfn))
            {
                return Refuse(XenErrno.ENOMEM, "populate-no-memory", $"populate_physmap of pfn 0x{pfn:x}: no free machine frame");
            }

            zero(mfn);
            _frames[mfn] = new PvPageFrame { Owned = true };
            _physToMachine.SetMachine(pfn, mfn);
            SetM2p(mfn, pfn);
            Counters.Increment("pv-balloon-populated");
            return 0;
        }
    }

    private void SetM2p(ulong mfn, ulong pfn)
    {
        _physToMachine.SetPhysical(mfn, pfn);
        if (M2pAddress != 0)
        {
            _memory.Write(M2pAddress + (mfn * 8), pfn);
        }
    }
}
