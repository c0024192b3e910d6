namespace SharpVisor.Xen;

/// <summary>
/// GNTTABOP_map_grant_ref and GNTTABOP_unmap_grant_ref for an auto-translated domain (PVH, HVM;
/// docs/xen.md, "Grant mapping"): a granted page — another domain's through the
/// <see cref="IXenGrantMapLink"/>, or this domain's own — shown at a guest-physical page of this
/// domain's RAM until unmapped, with a handle from a bounded maptrack table; and the granter's
/// half, which checks a peer's map against this domain's grant table and keeps it marked in use.
/// </summary>
public sealed partial class XenDomain
{
    private const int GnttabMapGrantRef = 0;
    private const int GnttabUnmapGrantRef = 1;
    private const int MapOpSize = 32;
    private const int UnmapOpSize = 24;
    private const uint GntmapDeviceMap = 1;
    private const uint GntmapHostMap = 2;
    private const uint GntmapReadOnly = 4;

    /// <summary>Grant maps one domain may hold at once (its maptrack table); more is GNTST_no_device_space.</summary>
    public const int MaxGrantMaps = 16384;

    /// <summary>Map or unmap operations one grant_table_op call may carry.</summary>
    public const int MaxMapBatch = 4096;

    /// <summary>Maps of this domain's grants other domains may hold at once.</summary>
    public const int MaxServedGrantMaps = 65536;

    private static readonly GrantMapping s_busy = new(0, 0, 0, false, default, Local: false);

    private readonly object _mapLock = new();
    private readonly GrantMapping?[] _maptrack = new GrantMapping?[MaxGrantMaps];
    private readonly Dictionary<ulong, int> _mappedPages = new();
    private int _maptrackUsed;
    private int _maptrackNext;
    private IXenGrantMapLink? _grantMapLink;

    private readonly Dictionary<ulong, ServedGrantMap> _served = new();
    private readonly Dictionary<ulong, int> _pinnedFrames = new();
    private ulong _nextServedToken = 1;

    /// <summary>Every grant table of this domain counts its maps here (GTF_reading/GTF_writing stay while any remains).</summary>
    public GrantPins GrantPins { get; } = new();

    /// <summary>Grant maps this domain holds now (its used maptrack handles).</summary>
    public int GrantMapCount
    {
        get
        {
            lock (_mapLock)
            {
                return _maptrackUsed;
            }
        }
    }

    /// <summary>Connects the domain to the granters of other domains' pages; without one, their grants are GNTST_bad_domain.</summary>
    public void AttachGrantMapLink(IXenGrantMapLink link)
    {
        ArgumentNullException.ThrowIfNull(link);
        _grantMapLink = link;
    }

    /// <summary>
    /// The granter's half of a peer's map: grant <paramref name="reference"/> must permit
    /// <paramref name="peer"/> (writable unless <paramref name="readOnly"/>) and name RAM of this
    /// domain; it stays marked in use until <see cref="ReleaseGrantMap"/> or the peer is gone.
    /// </summary>
    public short AcceptGrantMap(ushort peer, uint reference, bool readOnly, out XenForeignPage page)
    {
        page = default;
        if (peer == DomainId || peer == 0 || peer >= DomidSelf)
        {
            return GrantStatus.BadDomain;
        }

        lock (_served)
        {
            if (_served.Count >= MaxServedGrantMaps)
            {
                return GrantStatus.NoDeviceSpace;
            }
        }

        short status = MapOwnGrant(peer, reference, readOnly, out page);
        Counters.Increment(status == GrantStatus.Okay ? "interdomain-grant-maps" : "interdomain-grant-maps-refused");
        if (status == GrantStatus.Okay)
        {
            lock (_served)
            {
                page = page with { Token = _nextServedToken++ };
                _served[page.Token] = new ServedGrantMap(peer, reference, !readOnly, page);
            }
        }

        return status;
    }

    /// <summary>A peer unmapped the map with <paramref name="token"/>; anything else (another peer's token, a stale one) changes nothing.</summary>
    public void ReleaseGrantMap(ushort peer, ulong token)
    {
        ServedGrantMap map;
        lock (_served)
        {
            if (!_served.TryGetValue(token, out map) || map.Peer != peer)
            {
                Counters.Increment("interdomain-grant-unmaps-dropped");
                return;
            }

            _served.Remove(token);
        }

        UnpinOwnGrant(map.Reference, map.Write, map.Page);
        Counters.Increment("interdomain-grant-unmaps");
    }

    /// <summary>A peer is gone: the maps it held of this domain's grants are released. The number released.</summary>
    public int ReleaseGrantMaps(ushort peer)
    {
        List<ServedGrantMap> gone;
        lock (_served)
        {
            gone = [];
            foreach ((ulong token, ServedGrantMap map) in _served.ToArray())
            {
                if (map.Peer == peer)
                {
                    gone.Add(map);
                    _served.Remove(token);
                }
            }
        }

        foreach (ServedGrantMap map in gone)
        {
            UnpinOwnGrant(map.Reference, map.Write, map.Page);
        }

        return gone.Count;
    }

    /// <summary>
    /// The page of the map <paramref name="token"/> if <paramref name="peer"/> holds it (it may then
    /// have the memory file behind it), and whether the map is writable.
    /// </summary>
    public bool TryGetServedGrantMap(ushort peer, ulong token, out XenForeignPage page, out bool write)
    {
        lock (_served)
        {
            bool held = _served.TryGetValue(token, out ServedGrantMap map) && map.Peer == peer;
            page = held ? map.Page : default;
            write = held && map.Write;
            return held;
        }
    }

    private long GrantMapOps(HypercallFrame frame, int command, ulong arg, uint count)
    {
        if (count > MaxMapBatch)
        {
            throw new XenException(XenErrno.EINVAL, $"grant map batch of {count} exceeds {MaxMapBatch}");
        }

        bool map = command == GnttabMapGrantRef;
        int size = map ? MapOpSize : UnmapOpSize;
        Span<byte> op = stackalloc byte[MapOpSize];
        for (uint i = 0; i < count; i++)
        {
            ulong address = arg + (i * (ulong)size);
            frame.ReadBytes(address, op[..size]);
            short status;
            if (map)
            {
                ulong busAddress = 0;             // dev_bus_addr: no device mapping in a translated domain
                uint handle;
                status = _pvTables is { } pv ? MapOnePv(pv, frame.VcpuId, op, out handle, out busAddress) : MapOne(op, out handle);
                frame.Write(address + 18, status);
                frame.Write(address + 20, handle);
                frame.Write(address + 24, busAddress);
            }
            else
            {
                status = _pvTables is { } pv ? UnmapOnePv(pv, frame.VcpuId, op) : UnmapOne(op);
                frame.Write(address + 20, status);
            }

            string name = map ? "grant-map" : "grant-unmap";
            Counters.Increment($"{name}-ops");
            if (status != GrantStatus.Okay)
            {
                Counters.Increment($"{name}-status{status}");
            }
        }

        return 0;
    }

    /// <summary>One struct gnttab_map_grant_ref { u64 host_addr; u32 flags; u32 ref; u16 dom; i16 status; u32 handle; u64 dev_bus_addr }.</summary>
    private short MapOne(ReadOnlySpan<byte> op, out uint handle)
    {
        handle = uint.MaxValue;
        ulong hostAddress = BitConverter.ToUInt64(op);
        uint flags = BitConverter.ToUInt32(op[8..]);
        uint reference = BitConverter.ToUInt32(op[12..]);
        ushort granter = BitConverter.ToUInt16(op[16..]);

        // Xen's map_grant_ref: neither mapping kind is GNTST_bad_gntref; a translated domain
        // maps only into its physmap (create_grant_p2m_mapping: host_map, optionally read-only).
        if ((flags & (GntmapDeviceMap | GntmapHostMap)) == 0)
        {
            return GrantStatus.BadGntref;
        }

        if ((flags & ~GntmapReadOnly) != GntmapHostMap)
        {
            return GrantStatus.GeneralError;
        }

        bool readOnly = (flags & GntmapReadOnly) != 0;
        bool local = granter == DomainId;
        IXenGrantMapLink? link = _grantMapLink;
        if (granter == 0 || granter >= DomidSelf || (!local && link is null))
        {
            return GrantStatus.BadDomain;
        }

        ulong page = hostAddress & ~0xFFFUL;
        if (!IsMappableTarget(page, out bool outsideRam))
        {
            return GrantStatus.GeneralError;
        }

        int slot;
        bool newTarget = false;
        lock (_mapLock)
        {
            if (_mappedPages.ContainsKey(page))
            {
                return GrantStatus.GeneralError;   // Xen crashes a domain that maps over a grant map
            }

            if (_maptrackUsed >= MaxGrantMaps || (outsideRam && !ReserveMapTargetPage(page, out newTarget)))
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
            _mappedPages[page] = slot;
        }

        // The granter's checks and our mmap run without the lock: a foreign map is a round trip.
        XenForeignPage foreign = default;
        short status = local ? MapOwnGrant(DomainId, reference, readOnly, out foreign) : link!.MapGrant(granter, reference, readOnly, out foreign);
        if (status == GrantStatus.Okay)
        {
            bool mapped = (!outsideRam || EnsureMapTargetRegion(page)) && Memory.TryMapForeignPage(page, foreign.MemFd, foreign.FileOffset, readOnly);
            if (!local)
            {
                link!.Mapped(foreign);
            }

            if (!mapped)
            {
                Warn($"grant map of domain {granter} ref {reference} at 0x{page:x}: the host refused the mapping");
                ReleaseMap(granter, reference, readOnly, foreign, local);
                status = GrantStatus.GeneralError;
            }
        }

        lock (_mapLock)
        {
            if (status == GrantStatus.Okay)
            {
                _maptrack[slot] = new GrantMapping(granter, reference, page, readOnly, foreign, local);
                handle = (uint)slot;
            }
            else
            {
                _maptrack[slot] = null;
                _maptrackUsed--;
                _mappedPages.Remove(page);
                if (newTarget && Memory.FindRegion(page, 4096) is null)
                {
                    _mapTargetPages.Remove(page);   // never used: it does not count against the domain
                }
            }
        }

        if (status == GrantStatus.Okay && !local)
        {
            Counters.Increment("grant-maps-foreign");
        }

        return status;
    }

    /// <summary>One struct gnttab_unmap_grant_ref { u64 host_addr; u64 dev_bus_addr; u32 handle; i16 status }.</summary>
    private short UnmapOne(ReadOnlySpan<byte> op)
    {
        ulong page = BitConverter.ToUInt64(op) & ~0xFFFUL;
        uint handle = BitConverter.ToUInt32(op[16..]);
        GrantMapping mapping;
        lock (_mapLock)
        {
            if (handle >= MaxGrantMaps || _maptrack[handle] is not { } found || ReferenceEquals(found, s_busy))
            {
                return GrantStatus.BadHandle;   // never mapped, already unmapped, or mid-(un)map on another vCPU
            }

            if (found.Address != page)
            {
                return GrantStatus.GeneralError;   // Xen's replace_grant_p2m_mapping: "old mapping invalid"
            }

            mapping = found;
            _maptrack[handle] = s_busy;
        }

        if (!Memory.TryRestoreOwnPage(mapping.Address))
        {
            // The foreign page stays where it is and so does the handle: the guest may try again.
            Warn($"grant unmap at 0x{mapping.Address:x}: the host could not map the domain's own page back");
            lock (_mapLock)
            {
                _maptrack[handle] = mapping;
            }

            return GrantStatus.GeneralError;
        }

        ReleaseMap(mapping.Granter, mapping.Reference, mapping.ReadOnly, mapping.Page, mapping.Local);
        lock (_mapLock)
        {
            _maptrack[handle] = null;
            _maptrackUsed--;
            _mappedPages.Remove(mapping.Address);
        }

        return GrantStatus.Okay;
    }

    /// <summary>
    /// Whether the guest-physical page is RAM of this domain the hypervisor does not itself use, or
    /// a page outside RAM in the domain's map-target window (<paramref name="outsideRam"/>).
    /// </summary>
    private bool IsMappableTarget(ulong page, out bool outsideRam)
    {
        outsideRam = false;
        if (page >= 1UL << 40)
        {
            return false;
        }

        if (Memory.FindRegion(page, 4096) is not { IsRam: true })
        {
            outsideRam = true;
            if (!IsMapTargetOutsideRam(page))
            {
                return false;
            }
        }

        ulong gfn = page >> 12;
        if (page == SharedInfoAddress || gfn == GetParam(HvmParam.ConsolePfn) || gfn == GetParam(HvmParam.StorePfn))
        {
            return false;
        }

        for (int i = 0; i < MaxGrantFrames; i++)
        {
            if (GetGrantFrame(i) == page)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Whether the balloon must leave <paramref name="page"/> alone: a grant map shows another
    /// domain's page there (a discard or a fill would reach that page), or a map holds this page
    /// of ours (giving it back would pull it from under the mapper).
    /// </summary>
    private bool IsGrantMapped(ulong page)
    {
        lock (_mapLock)
        {
            if (_mappedPages.ContainsKey(page))
            {
                return true;
            }
        }

        lock (_pinnedFrames)
        {
            return _pinnedFrames.ContainsKey(page);
        }
    }

    /// <summary>
    /// A map of one of this domain's grants (for <paramref name="grantee"/>): checked and pinned by
    /// its grant table. The granted frame must hold a page of ours: not one given back to the
    /// balloon, not another grant map (Xen: GNTST_bad_page for a frame without a page of the domain).
    /// </summary>
    private short MapOwnGrant(ushort grantee, uint reference, bool readOnly, out XenForeignPage page)
    {
        page = default;
        short status = OwnGrants.TryMap(grantee, reference, !readOnly, out ulong address);
        if (status != GrantStatus.Okay)
        {
            return status;
        }

        bool mapped;
        lock (_mapLock)
        {
            mapped = _mappedPages.ContainsKey(address);
        }

        if (mapped || IsBallooned(address) || !Memory.TryGetPageFile(address, out int memfd, out long offset))
        {
            OwnGrants.Unmap(reference, !readOnly);
            Counters.Increment("grant-map-bad-page");
            return GrantStatus.BadPage;
        }

        lock (_pinnedFrames)
        {
            _pinnedFrames[address] = _pinnedFrames.GetValueOrDefault(address) + 1;
        }

        page = new XenForeignPage(0, memfd, offset) { Address = address };
        return GrantStatus.Okay;
    }

    private bool IsBallooned(ulong address)
    {
        lock (_balloonLock)
        {
            ulong gfn = address >> 12;
            return _ballooned is { } ballooned && gfn < (ulong)ballooned.Length && ballooned[(int)gfn];
        }
    }

    private void UnpinOwnGrant(uint reference, bool write, XenForeignPage page)
    {
        lock (_pinnedFrames)
        {
            if (_pinnedFrames.TryGetValue(page.Address, out int count))
            {
                if (count <= 1)
                {
                    _pinnedFrames.Remove(page.Address);
                }
                else
                {
                    _pinnedFrames[page.Address] = count - 1;
                }
            }
        }

        try
        {
            OwnGrants.Unmap(reference, write);
        }
        catch (GrantTableException)
        {
            // The guest took its grant frame away meanwhile: no flags left to clear.
        }
    }

    private void ReleaseMap(ushort granter, uint reference, bool readOnly, XenForeignPage page, bool local)
    {
        if (local)
        {
            UnpinOwnGrant(reference, !readOnly, page);
        }
        else
        {
            _grantMapLink?.UnmapGrant(granter, page.Token);
        }
    }

    /// <summary>One maptrack entry: whose grant is shown where, and the granter's token for the release.</summary>
    private sealed record GrantMapping(ushort Granter, uint Reference, ulong Address, bool ReadOnly, XenForeignPage Page, bool Local)
    {
        /// <summary>A PV domain's map: the L1 entry and stand-in frame (XenDomain.PvGrantMaps.cs).</summary>
        public Pv.PvGrantMapping? Pv { get; init; }
    }

    private readonly record struct ServedGrantMap(ushort Peer, uint Reference, bool Write, XenForeignPage Page);
}
