namespace SharpVisor.Xen.Pv;

/// <summary>
/// GNTTABOP_map_grant_ref into a PV domain's page tables (xen/arch/x86/pv/grant_table.c,
/// create_grant_pv_mapping and replace_grant_pv_mapping). On Xen the granted machine frame goes
/// into the L1 entry; here the granted page lives in another frame table (another domain of this
/// VMM, or another VMM's memory file), so the entry names a <b>stand-in</b> machine frame of this
/// machine — one of the free pool (frames the domain gave back, like Linux's ballooned pages) —
/// whose host page becomes the granted page for as long as the map lasts. The stand-in is not the
/// domain's (no mmu_update can name it), is out of the pool, and is named by exactly one entry,
/// marked _PAGE_GNTTAB (which a guest cannot write). The map holds an L1 type reference on the
/// table it wrote into, so that table stays validated until the unmap, and an ordinary update of
/// the granted entry is refused (<see cref="ModifyEntry"/>). Statuses are Xen's GNTST_* codes.
/// </summary>
public sealed partial class PvPageTables
{
    /// <summary>The grant maps in the tables now, by stand-in frame.</summary>
    private readonly Dictionary<ulong, PvGrantMapping> _grantMappings = [];

    /// <summary>A snapshot of the grant maps in the tables (for the invariant and diagnostics).</summary>
    public IReadOnlyList<PvGrantMapping> GrantMappings
    {
        get
        {
            lock (_lock)
            {
                return [.. _grantMappings.Values];
            }
        }
    }

    /// <summary>
    /// Writes a grant map's L1 entry. <paramref name="hostAddress"/> is a linear address, whose L1
    /// entry in <paramref name="vcpu"/>'s kernel tables is written (Xen's create_grant_va_mapping), or
    /// with <paramref name="containsPte"/> the machine address of the entry itself
    /// (create_grant_pte_mapping); either way the entry must be in an L1 table in use. A stand-in
    /// frame is taken from the free pool and handed to <paramref name="attach"/>, which puts the
    /// granted page behind it (false: GNTST_general_error, nothing changed). The old entry's
    /// references are dropped, as Xen's put_page_from_l1e of the entry it replaces. The caller
    /// flushes (<see cref="FlushGrantMapping"/>) once the lock is released. <paramref name="extraFlags"/>
    /// may add _PAGE_USER (GNTMAP_application_map) and the guest's avail bits 9-11, nothing else.
    /// </summary>
    public short TryMapGrant(PvVcpuPaging vcpu, ulong hostAddress, bool containsPte, bool readOnly, ulong extraFlags, Func<ulong, bool> attach, out PvGrantMapping mapping)
    {
        ArgumentNullException.ThrowIfNull(vcpu);
        ArgumentNullException.ThrowIfNull(attach);
        mapping = default;
        if ((extraFlags & ~(PvPte.User | (7UL << 9))) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(extraFlags));
        }

        lock (_lock)
        {
            if (!TryFindGrantEntry(vcpu, hostAddress, containsPte, out ulong table, out int slot, out string why))
            {
                return RefuseGrant("grant-map-entry", $"grant map at 0x{hostAddress:x}: {why}");
            }

            ulong old = ReadEntry(table, slot);
            if ((old & (PvPte.Present | PvPte.GrantMapped)) == (PvPte.Present | PvPte.GrantMapped))
            {
                // Xen would put_page_from_l1e the granted entry and crash the domain: refused here.
                return RefuseGrant("grant-map-over-map", $"grant map at 0x{hostAddress:x}: the entry is a grant map already");
            }

            if (_freeFrames.Count == 0)
            {
                return RefuseGrant("grant-map-no-frame", $"grant map at 0x{hostAddress:x}: no free machine frame to stand in for the granted page", GrantStatus.NoDeviceSpace);
            }

            // The map's own references on the table (an L1 in use: only a count more), so it stays validated.
            _frames[table].ReferenceCount++;
            if (GetType(table, PvPageType.L1) != 0)
            {
                _frames[table].ReferenceCount--;
                return RefuseGrant("grant-map-entry", $"grant map at 0x{hostAddress:x}: machine frame 0x{table:x} is not a validated L1 table");
            }

            ulong frame = _freeFrames.Pop();
            if (!attach(frame))
            {
                _freeFrames.Push(frame);
                PutType(table);
                _frames[table].ReferenceCount--;
                return RefuseGrant("grant-map-host", $"grant map at 0x{hostAddress:x}: the host refused the mapping");
            }

            // Xen's grant_to_pte_flags (present, accessed, dirty, _PAGE_GNTTAB, writable unless
            // read-only), adjusted as every 64-bit PV kernel mapping is (user, _PAGE_GUEST_KERNEL).
            ulong entry = (frame << 12) | PvPte.Present | PvPte.Accessed | PvPte.Dirty | PvPte.GrantMapped | extraFlags | (readOnly ? 0 : PvPte.Writable);
            _frames[frame].GrantMapped = true;
            WriteEntry(table, slot, PvPte.Adjust(1, entry));
            PutEntry(1, old);
            mapping = new PvGrantMapping(table, slot, frame, containsPte ? 0 : hostAddress & ~0xFFFUL, readOnly);
            _grantMappings[frame] = mapping;
            Counters.Increment("pv-grant-maps");
            return GrantStatus.Okay;
        }
    }

    /// <summary>
    /// GNTTABOP_unmap_grant_ref of <paramref name="mapping"/> at <paramref name="hostAddress"/>: the
    /// address must still lead to the map's entry (the linear address through the vCPU's kernel
    /// tables, or the entry's machine address for a contains_pte map) and the entry must still name
    /// the stand-in, else GNTST_general_error (Xen's replace_grant_pv_mapping: "PTE entry doesn't
    /// match frame") and the map stays. <paramref name="detach"/> takes the granted page away from
    /// the stand-in (false: GNTST_general_error, the map stays); then the entry is cleared, as Xen's
    /// destroy leaves it, the table's reference dropped and the stand-in back in the pool.
    /// </summary>
    public short TryUnmapGrant(PvVcpuPaging vcpu, ulong hostAddress, PvGrantMapping mapping, Func<ulong, bool> detach)
    {
        ArgumentNullException.ThrowIfNull(vcpu);
        ArgumentNullException.ThrowIfNull(detach);
        lock (_lock)
        {
            bool containsPte = mapping.LinearAddress == 0;
            if (!_grantMappings.TryGetValue(mapping.Frame, out PvGrantMapping held) || held != mapping)
            {
                return RefuseGrant("grant-unmap-unknown", $"grant unmap of stand-in 0x{mapping.Frame:x}: no such map");
            }

            if (!TryFindGrantEntry(vcpu, hostAddress, containsPte, out ulong table, out int slot, out string why)
                || table != mapping.Table || slot != mapping.Slot)
            {
                return RefuseGrant("grant-unmap-entry", $"grant unmap at 0x{hostAddress:x}: {(why.Length > 0 ? why : "not the entry the map wrote")}");
            }

            if (!detach(mapping.Frame))
            {
                return RefuseGrant("grant-unmap-host", $"grant unmap at 0x{hostAddress:x}: the host could not take the granted page away");
            }

            Release(mapping, toPool: true);
            Counters.Increment("pv-grant-unmaps");
            return GrantStatus.Okay;
        }
    }

    /// <summary>
    /// Domain death: the map goes whatever the guest did with its tables since — its entry cleared,
    /// the table's reference dropped, <paramref name="detach"/> run and the stand-in back in the pool
    /// (or, when the host could not take the granted page away, never handed out again).
    /// </summary>
    public void ReleaseGrantMapping(PvGrantMapping mapping, Func<ulong, bool> detach)
    {
        ArgumentNullException.ThrowIfNull(detach);
        lock (_lock)
        {
            if (!_grantMappings.TryGetValue(mapping.Frame, out PvGrantMapping held) || held != mapping)
            {
                return;
            }

            Release(mapping, toPool: detach(mapping.Frame));
        }
    }

    /// <summary>The TLB flush after a map or unmap (outside the lock: it may wait for other vCPUs).</summary>
    public void FlushGrantMapping(PvGrantMapping mapping)
    {
        if (mapping.LinearAddress != 0)
        {
            _host?.FlushPage(-1, mapping.LinearAddress);
        }
        else
        {
            _host?.FlushAll(-1);       // a contains_pte entry may be mapped at any address
        }
    }

    private void Release(PvGrantMapping mapping, bool toPool)
    {
        // Only the unmap changes a granted entry and the map keeps its table validated: it is still there.
        WriteEntry(mapping.Table, mapping.Slot, 0);
        _grantMappings.Remove(mapping.Frame);
        _frames[mapping.Frame] = default;
        if (toPool)
        {
            _freeFrames.Push(mapping.Frame);
        }

        PutType(mapping.Table);
        _frames[mapping.Table].ReferenceCount--;
    }

    /// <summary>The L1 entry a grant map's host_addr names: in an L1 table in use, as Xen's get_page_type(PGT_l1_page_table) requires.</summary>
    private bool TryFindGrantEntry(PvVcpuPaging vcpu, ulong hostAddress, bool containsPte, out ulong table, out int slot, out string why)
    {
        if (!containsPte)
        {
            slot = (int)((hostAddress >> 12) & 511);
            return TryFindL1(vcpu.KernelBase, hostAddress, out table, out why);
        }

        table = hostAddress >> 12;
        slot = (int)((hostAddress & 0xFFF) >> 3);
        if ((hostAddress & 7) != 0)
        {
            why = "the entry's machine address is not 8-byte aligned";
            return false;
        }

        if (!Owns(table) || _frames[table].Type != PvPageType.L1 || _frames[table].TypeCount == 0)
        {
            why = $"machine frame 0x{table:x} is not an L1 table of the domain in use";
            return false;
        }

        why = string.Empty;
        return true;
    }

    private short RefuseGrant(string reason, string message, short status = GrantStatus.GeneralError)
    {
        Refuse(XenErrno.EINVAL, reason, message);
        return status;
    }
}
