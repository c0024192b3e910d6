namespace SharpVisor.Xen;

/// <summary>
/// Event channels and grant copies between this domain and domains in other VMM processes
/// (docs/xen.md, "Inter-domain"): the calls arriving from a peer through the link, each checked
/// against this domain's own state, and this domain's grant_table_op copy.
/// </summary>
public sealed partial class XenDomain
{
    private const int GnttabCopy = 5;
    private const ushort CopySourceGref = 1;
    private const ushort CopyDestGref = 2;
    private const int CopyOpSize = 40;

    /// <summary>Copy operations one grant_table_op call may carry (Linux batches up to a ring's worth).</summary>
    public const int MaxCopyBatch = 512;

    private IXenInterdomainLink? _link;
    private GrantTable? _ownGrants;

    /// <summary>Connects the domain to its peers (the daemon's link); without one, other domains are ESRCH.</summary>
    public void AttachInterdomainLink(IXenInterdomainLink link)
    {
        ArgumentNullException.ThrowIfNull(link);
        _link = link;
    }

    /// <summary>
    /// A peer's bind_interdomain to <paramref name="port"/>: the port must be unbound for
    /// <paramref name="peer"/>; it becomes interdomain to (<paramref name="peer"/>, <paramref name="peerPort"/>).
    /// 0, or the positive errno the peer's guest gets.
    /// </summary>
    public int AcceptInterdomainBind(ushort peer, uint port, int peerPort)
    {
        lock (_lock)
        {
            EventChannel? channel = port < (uint)_channels.Length ? _channels[port] : null;
            if (channel is null || channel.State != EventChannelState.Unbound || channel.RemoteDomain != peer || peer == DomainId || peer == 0
                || peerPort <= 0 || peerPort >= SharedInfoLayout.MaxPorts)
            {
                Counters.Increment("interdomain-binds-refused");
                return XenErrno.EINVAL;
            }

            channel.State = EventChannelState.Interdomain;
            channel.RemotePort = peerPort;
        }

        Counters.Increment("interdomain-binds");
        return 0;
    }

    /// <summary>A peer's send: sets <paramref name="port"/> pending if it is bound to exactly (<paramref name="peer"/>, <paramref name="peerPort"/>).</summary>
    public void DeliverInterdomain(ushort peer, uint port, int peerPort)
    {
        EventChannel? channel;
        lock (_lock)
        {
            channel = port < (uint)_channels.Length ? _channels[port] : null;
            if (!IsBoundTo(channel, peer, peerPort))
            {
                channel = null;
            }
        }

        if (channel is null)
        {
            Counters.Increment("interdomain-sends-dropped");
            return;
        }

        Counters.Increment("interdomain-sends-in");
        SetPending(channel);
        OnKernelEvent(channel);
    }

    /// <summary>A peer closed its end: ours goes back to unbound for it, as Xen leaves the remote end of a closed channel.</summary>
    public void PeerClosed(ushort peer, uint port, int peerPort)
    {
        lock (_lock)
        {
            EventChannel? channel = port < (uint)_channels.Length ? _channels[port] : null;
            if (IsBoundTo(channel, peer, peerPort))
            {
                channel!.State = EventChannelState.Unbound;
                channel.RemotePort = 0;
            }
        }
    }

    /// <summary>A peer domain is gone (its VMM died or was destroyed): every port bound to it is unbound again.</summary>
    public int PeerGone(ushort peer)
    {
        int unbound = 0;
        lock (_lock)
        {
            foreach (EventChannel? channel in _channels)
            {
                if (channel is { State: EventChannelState.Interdomain, OnGuestSend: null } && channel.RemoteDomain == peer && peer != DomainId)
                {
                    channel.State = EventChannelState.Unbound;
                    channel.RemotePort = 0;
                    unbound++;
                }
            }
        }

        Counters.Increment("interdomain-peers-gone");
        return unbound;
    }

    /// <summary>The ports bound to other domains, for the toolstack: (local port, remote domain, remote port; 0 while unbound).</summary>
    public IReadOnlyList<(int Port, ushort RemoteDomain, int RemotePort)> InterdomainPorts()
    {
        var ports = new List<(int, ushort, int)>();
        lock (_lock)
        {
            foreach (EventChannel? channel in _channels)
            {
                if (channel is { OnGuestSend: null } && channel.State is EventChannelState.Interdomain or EventChannelState.Unbound
                    && channel.RemoteDomain != DomainId && channel.RemoteDomain != 0)
                {
                    ports.Add((channel.Port, channel.RemoteDomain, channel.State == EventChannelState.Interdomain ? channel.RemotePort : 0));
                }
            }
        }

        return ports;
    }

    private static bool IsBoundTo(EventChannel? channel, ushort peer, int peerPort) =>
        channel is { State: EventChannelState.Interdomain, OnGuestSend: null } && channel.RemoteDomain == peer && channel.RemotePort == peerPort;

    private bool IsForeign(ushort domain) => domain != DomidSelf && domain != DomainId;

    /// <summary>bind_interdomain to a port of another domain: the local port first, then the peer's half without our lock held.</summary>
    private int BindForeign(ushort remoteDom, uint remotePort)
    {
        IXenInterdomainLink link = _link ?? throw new XenException(XenErrno.ESRCH, $"domain {remoteDom} is not reachable");
        if (remotePort == 0 || remotePort >= SharedInfoLayout.MaxPorts)
        {
            throw new XenException(XenErrno.EINVAL, $"remote port {remotePort} is out of range");
        }

        EventChannel local;
        lock (_lock)
        {
            local = AllocateLocked();
            local.State = EventChannelState.Interdomain;
            local.RemoteDomain = remoteDom;
            local.RemotePort = (int)remotePort;
        }

        int error = link.Bind(remoteDom, (int)remotePort, local.Port);
        if (error != 0)
        {
            lock (_lock)
            {
                if (GetLocked(local.Port) == local)
                {
                    _channels[local.Port] = null;
                }
            }

            throw new XenException(error, $"domain {remoteDom} refused the bind to its port {remotePort}");
        }

        bool stillOpen;
        lock (_lock)
        {
            stillOpen = GetLocked(local.Port) == local;
        }

        if (!stillOpen)
        {
            // Another vCPU closed the port while the peer was binding: undo the peer's half.
            link.Close(remoteDom, (int)remotePort, local.Port);
            throw new XenException(XenErrno.EINVAL, $"port {local.Port} was closed during its bind");
        }

        Counters.Increment("interdomain-binds");
        return local.Port;
    }

    /// <summary>
    /// GNTTABOP_copy: each struct gnttab_copy { {union {ref; gmfn}; domid; offset} source, dest;
    /// uint16 len; uint16 flags; int16 status } gets its GNTST status; the call itself fails only
    /// for a batch it cannot read or answer.
    /// </summary>
    private long GrantCopy(HypercallFrame frame, ulong arg, uint count)
    {
        if (count > MaxCopyBatch)
        {
            throw new XenException(XenErrno.EINVAL, $"grant copy batch of {count} exceeds {MaxCopyBatch}");
        }

        Span<byte> op = stackalloc byte[CopyOpSize];
        byte[] page = new byte[4096];
        for (uint i = 0; i < count; i++)
        {
            ulong address = arg + (i * CopyOpSize);
            frame.ReadBytes(address, op);
            short status = CopyOne(frame, op, page);
            Counters.Increment("grant-copy-ops");
            if (status != GrantStatus.Okay)
            {
                Counters.Increment($"grant-copy-status{status}");
            }

            frame.Write(address + 36, status);
        }

        return 0;
    }

    private short CopyOne(HypercallFrame frame, ReadOnlySpan<byte> op, byte[] page)
    {
        ulong sourceRef = BitConverter.ToUInt64(op);
        ushort sourceDom = BitConverter.ToUInt16(op[8..]);
        ushort sourceOffset = BitConverter.ToUInt16(op[10..]);
        ulong destRef = BitConverter.ToUInt64(op[16..]);
        ushort destDom = BitConverter.ToUInt16(op[24..]);
        ushort destOffset = BitConverter.ToUInt16(op[26..]);
        ushort length = BitConverter.ToUInt16(op[32..]);
        ushort flags = BitConverter.ToUInt16(op[34..]);
        bool sourceGref = (flags & CopySourceGref) != 0;
        bool destGref = (flags & CopyDestGref) != 0;
        if ((flags & ~(CopySourceGref | CopyDestGref)) != 0 || sourceOffset + length > 4096 || destOffset + length > 4096)
        {
            return GrantStatus.BadCopyArg;
        }

        // Xen: only DOMID_SELF may name a frame; another domain's memory is reached through its grants.
        if ((!sourceGref && sourceDom != DomidSelf) || (!destGref && destDom != DomidSelf))
        {
            return GrantStatus.PermissionDenied;
        }

        Span<byte> data = page.AsSpan(0, length);
        short status = sourceGref
            ? ReadGrant(sourceDom, sourceRef, sourceOffset, data)
            : ReadOwnFrame(frame, sourceRef, sourceOffset, data);
        if (status != GrantStatus.Okay)
        {
            return status;
        }

        return destGref
            ? WriteGrant(destDom, destRef, destOffset, data)
            : WriteOwnFrame(frame, destRef, destOffset, data);
    }

    private short ReadGrant(ushort granter, ulong reference, int offset, Span<byte> destination)
    {
        if (reference > uint.MaxValue)
        {
            return GrantStatus.BadGntref;
        }

        if (!IsForeign(granter))
        {
            return OwnGrants.TryCopyFrom(DomainId, (uint)reference, offset, destination);
        }

        Counters.Increment("grant-copy-foreign");
        return _link?.CopyFromGrant(granter, (uint)reference, offset, destination) ?? GrantStatus.BadDomain;
    }

    private short WriteGrant(ushort granter, ulong reference, int offset, ReadOnlySpan<byte> source)
    {
        if (reference > uint.MaxValue)
        {
            return GrantStatus.BadGntref;
        }

        if (!IsForeign(granter))
        {
            return OwnGrants.TryCopyTo(DomainId, (uint)reference, offset, source);
        }

        Counters.Increment("grant-copy-foreign");
        return _link?.CopyToGrant(granter, (uint)reference, offset, source) ?? GrantStatus.BadDomain;
    }

    private short ReadOwnFrame(HypercallFrame frame, ulong gmfn, int offset, Span<byte> destination)
    {
        ulong page;
        try
        {
            page = frame.RamFrame(gmfn);
        }
        catch (XenException)
        {
            return GrantStatus.BadPage;
        }

        Memory.Read(page + (ulong)offset, destination);
        return GrantStatus.Okay;
    }

    private short WriteOwnFrame(HypercallFrame frame, ulong gmfn, int offset, ReadOnlySpan<byte> source)
    {
        ulong page;
        try
        {
            page = frame.RamFrame(gmfn);
        }
        catch (XenException)
        {
            return GrantStatus.BadPage;
        }

        if (_pvTables is { } pv)
        {
            // Xen's gnttab_copy takes a writable type reference on the destination: never into a page table or GDT frame in use.
            byte[] data = source.ToArray();
            return pv.TryWriteAsWritable(gmfn, () => Memory.Write(page + (ulong)offset, data)) ? GrantStatus.Okay : GrantStatus.GeneralError;
        }

        Memory.Write(page + (ulong)offset, source);
        return GrantStatus.Okay;
    }

    /// <summary>This domain's own grant table, for copies between its own grants (domid self).</summary>
    private GrantTable OwnGrants => LazyInitializer.EnsureInitialized(ref _ownGrants, () => new GrantTable(this));
}
