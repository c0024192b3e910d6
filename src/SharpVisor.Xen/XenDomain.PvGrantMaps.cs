using SharpVisor.Xen.Pv;

namespace SharpVisor.Xen;

/// <summary>
/// GNTTABOP_map_grant_ref and unmap_grant_ref for a PV mapper (docs/xen-pv.md, "Grant maps"): the
/// granter's checks and pin as for PVH (<see cref="MapOwnGrant"/>, the link), then the page goes
/// into the guest's page tables — Xen writes the L1 entry for host_addr, a linear address in the
/// current kernel tables or, with GNTMAP_contains_pte, the entry's machine address — through a
/// stand-in machine frame (<see cref="PvPageTables.TryMapGrant"/>) whose number dev_bus_addr answers,
/// as Xen answers the granted frame's (Linux's set_foreign_p2m_mapping records it in its P2M).
/// </summary>
public sealed partial class XenDomain
{
    private const uint GntmapApplicationMap = 8;
    private const uint GntmapContainsPte = 16;
    private const int GntmapGuestAvailShift = 16;

    /// <summary>One PV map; <paramref name="busAddress"/> is the stand-in frame's machine address on success.</summary>
    private short MapOnePv(PvPageTables pv, int vcpuId, ReadOnlySpan<byte> op, out uint handle, out ulong busAddress)
    {
        handle = uint.MaxValue;
        busAddress = 0;
        ulong hostAddress = BitConverter.ToUInt64(op);
        uint flags = BitConverter.ToUInt32(op[8..]);
        uint reference = BitConverter.ToUInt32(op[12..]);
        ushort granter = BitConverter.ToUInt16(op[16..]);

        if ((flags & (GntmapDeviceMap | GntmapHostMap)) == 0)
        {
            return GrantStatus.BadGntref;
        }

        // host_map into the page tables, optionally read-only, user (application_map), through the
        // entry's address (contains_pte), with the guest's avail bits (16 up); no device maps (no IOMMU).
        const uint known = GntmapHostMap | GntmapReadOnly | GntmapApplicationMap | GntmapContainsPte;
        if ((flags & GntmapHostMap) == 0 || (flags & ~known & ((1u << GntmapGuestAvailShift) - 1)) != 0)
        {
            return GrantStatus.GeneralError;
        }

        bool readOnly = (flags & GntmapReadOnly) != 0;
        bool containsPte = (flags & GntmapContainsPte) != 0;
        bool local = granter == DomainId;
        IXenGrantMapLink? link = _grantMapLink;
        if (granter == 0 || granter >= DomidSelf || (!local && link is null))
        {
            return GrantStatus.BadDomain;
        }

        if (!containsPte && hostAddress == 0)
        {
            return GrantStatus.GeneralError;
        }

        int slot;
        lock (_mapLock)
        {
            if (_maptrackUsed >= MaxGrantMaps)
            {
                return GrantStatus.NoDeviceSpace;
            }

            slot = _maptrackNext;
            while (_maptrack[slot] is not null)
            {
                slot = (slot + 1) % MaxGrantMaps;
            }

            _maptrack[slot] = s_busy;
            _maptrackNext = (slot + 1) % MaxGrantMaps;
            _maptrackUsed++;
        }

        XenForeignPage foreign = default;
        short status = local ? MapOwnGrant(DomainId, reference, readOnly, out foreign) : link!.MapGrant(granter, reference, readOnly, out foreign);
        PvGrantMapping mapping = default;
        if (status == GrantStatus.Okay)
        {
            ulong user = (flags & GntmapApplicationMap) != 0 ? Pv.PvPte.User : 0;
            ulong avail = (ulong)((flags >> GntmapGuestAvailShift) & 7) << 9;
            status = pv.TryMapGrant(_pvPaging[vcpuId], hostAddress, containsPte, readOnly, user | avail,
                frame => Memory.TryMapForeignPage(frame << 12, foreign.MemFd, foreign.FileOffset, readOnly), out mapping);
            if (!local)
            {
                link!.Mapped(foreign);
            }

            if (status != GrantStatus.Okay)
            {
                ReleaseMap(granter, reference, readOnly, foreign, local);
            }
        }

        lock (_mapLock)
        {
            if (status == GrantStatus.Okay)
            {
                _maptrack[slot] = new GrantMapping(granter, reference, mapping.LinearAddress, readOnly, foreign, local) { Pv = mapping };
                handle = (uint)slot;
            }
            else
            {
                _maptrack[slot] = null;
                _maptrackUsed--;
            }
        }

        if (status == GrantStatus.Okay)
        {
            pv.FlushGrantMapping(mapping);
            busAddress = mapping.Frame << 12;
            if (!local)
            {
                Counters.Increment("grant-maps-foreign");
            }
        }

        return status;
    }

    /// <summary>One PV unmap: the handle's map, at the host_addr it was made with (the entry's machine address for contains_pte).</summary>
    private short UnmapOnePv(PvPageTables pv, int vcpuId, ReadOnlySpan<byte> op)
    {
        ulong hostAddress = BitConverter.ToUInt64(op);
        uint handle = BitConverter.ToUInt32(op[16..]);
        GrantMapping mapping;
        lock (_mapLock)
        {
            if (handle >= MaxGrantMaps || _maptrack[handle] is not { Pv: not null } found)
            {
                return GrantStatus.BadHandle;   // never mapped, already unmapped, or mid-(un)map on another vCPU
            }

            mapping = found;
            _maptrack[handle] = s_busy;
        }

        PvGrantMapping entry = mapping.Pv!.Value;
        short status = pv.TryUnmapGrant(_pvPaging[vcpuId], hostAddress, entry, DetachGrantedPage);
        lock (_mapLock)
        {
            _maptrack[handle] = status == GrantStatus.Okay ? null : mapping;
            if (status == GrantStatus.Okay)
            {
                _maptrackUsed--;
            }
        }

        if (status == GrantStatus.Okay)
        {
            pv.FlushGrantMapping(entry);
            ReleaseMap(mapping.Granter, mapping.Reference, mapping.ReadOnly, mapping.Page, mapping.Local);
        }

        return status;
    }

    /// <summary>Domain death: every grant map of this PV domain goes, its stand-ins back in the pool and the granters' pins released.</summary>
    public int ReleasePvGrantMaps()
    {
        if (_pvTables is not { } pv)
        {
            return 0;
        }

        var held = new List<GrantMapping>();
        lock (_mapLock)
        {
            for (int handle = 0; handle < MaxGrantMaps; handle++)
            {
                if (_maptrack[handle] is { Pv: not null } mapping)
                {
                    held.Add(mapping);
                    _maptrack[handle] = null;
                    _maptrackUsed--;
                }
            }
        }

        foreach (GrantMapping mapping in held)
        {
            pv.ReleaseGrantMapping(mapping.Pv!.Value, DetachGrantedPage);
            ReleaseMap(mapping.Granter, mapping.Reference, mapping.ReadOnly, mapping.Page, mapping.Local);
        }

        return held.Count;
    }

    /// <summary>The stand-in frame's own (released) page back behind it; its host memory released again, as a pool frame's.</summary>
    private bool DetachGrantedPage(ulong frame)
    {
        if (!Memory.TryRestoreOwnPage(frame << 12))
        {
            Warn($"grant unmap of stand-in machine frame 0x{frame:x}: the host could not map the frame's own page back");
            return false;
        }

        Memory.TryDiscard(frame << 12, 4096);
        return true;
    }
}
