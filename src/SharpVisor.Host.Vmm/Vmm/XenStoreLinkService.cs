using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using SharpVisor.Xen;

namespace SharpVisor.Host.Vmm;

/// <summary>
/// The XenStore half a domain's VMM serves its peers and uses of theirs (docs/xen.md, "Driver
/// domains" and "A Linux guest as the driver domain"). Served: this domain's store holds its own
/// tree and the back-end directories of its vbds, so a peer's requests for them come here and run
/// as that peer — the store's permissions and per-domain quotas apply to it as to a guest — and its
/// watches fire back over the link. Used (<see cref="IXenStoreRemote"/>): this domain's guest's own
/// xs_wire requests for another domain's tree go to that domain's VMM the same way.
/// </summary>
internal sealed class XenStoreLinkService(XenStore store, XenInterdomainLink link, ushort self) : IXenLinkService, IXenStoreRemote
{
    private readonly ConcurrentDictionary<ushort, XenStoreClient> _peers = new();
    private readonly ConcurrentDictionary<string, (ushort Holder, string Token, Action<string, string> Fire)> _routedWatches = new();
    private int _nextToken;

    public byte[]? Handle(ushort peer, XenLinkMessageType type, ReadOnlySpan<byte> payload)
    {
        if (type == XenLinkMessageType.XenStoreWatchEvent)
        {
            OnRoutedWatchEvent(peer, payload);
            return null;
        }

        if (type == XenLinkMessageType.XenStoreSeedVbd)
        {
            return SeedVbd(peer, payload);
        }

        if (type != XenLinkMessageType.XenStore)
        {
            return null;
        }

        if (XenStoreLinkWire.Parse(payload) is not { } request)
        {
            return XenStoreLinkWire.Error("EINVAL");
        }

        XenStoreClient client = _peers.GetOrAdd(peer, p => new XenStoreClient(store, p));
        try
        {
            switch (request.Op)
            {
                case XenStoreLinkWire.Read:
                    return XenStoreLinkWire.Ok(store.Read(peer, 0, request.Path));

                case XenStoreLinkWire.Directory:
                    return XenStoreLinkWire.Ok(Encoding.UTF8.GetBytes(string.Join('\0', store.Directory(peer, 0, request.Path))));

                case XenStoreLinkWire.Write:
                    store.Write(peer, request.Path, request.Value);
                    return XenStoreLinkWire.Ok([]);

                case XenStoreLinkWire.WatchPaths:
                    string routedToken = request.Value;
                    client.WatchPaths(request.Path, changed => link.Notify(peer, XenLinkMessageType.XenStoreWatchEvent, Encoding.UTF8.GetBytes(routedToken + "\0" + changed)));
                    return XenStoreLinkWire.Ok([]);

                default:
                    byte[] token = Encoding.UTF8.GetBytes(request.Value);
                    client.Watch(request.Path, () => link.Notify(peer, XenLinkMessageType.XenStoreWatchEvent, token));
                    return XenStoreLinkWire.Ok([]);
            }
        }
        catch (XenStoreException e)
        {
            return XenStoreLinkWire.Error(e.Error);
        }
    }

    /// <summary>A gone peer's watches go with it, and so do the routed watches this domain's guest had in its store.</summary>
    public void PeerGone(ushort peer)
    {
        if (_peers.TryRemove(peer, out XenStoreClient? client))
        {
            client.RemoveWatches();
        }

        foreach ((string token, var watch) in _routedWatches)
        {
            if (watch.Holder == peer)
            {
                _routedWatches.TryRemove(token, out _);
            }
        }
    }

    public byte[] Read(ushort holder, string path) => Call(holder, XenStoreLinkWire.Read, path);

    public IReadOnlyList<string> Directory(ushort holder, string path) =>
        Encoding.UTF8.GetString(Call(holder, XenStoreLinkWire.Directory, path)).Split('\0', StringSplitOptions.RemoveEmptyEntries);

    public void Write(ushort holder, string path, string value) => Call(holder, XenStoreLinkWire.Write, path, value);

    public void Watch(ushort holder, string path, string token, Action<string, string> fire)
    {
        string routed = "g" + Interlocked.Increment(ref _nextToken).ToString(CultureInfo.InvariantCulture);
        _routedWatches[routed] = (holder, token, fire);
        try
        {
            Call(holder, XenStoreLinkWire.WatchPaths, path, routed);
        }
        catch (XenStoreException)
        {
            _routedWatches.TryRemove(routed, out _);
            throw;
        }
    }

    /// <summary>
    /// A guest driver domain's VMM (this one) writes a front end's vbd back-end directory into its
    /// store as the toolstack: only under its own <c>backend/vbd/&lt;caller&gt;</c>, for the calling
    /// front end, with <c>physical-device</c> for a <c>/dev/xvdX</c> target of its own.
    /// </summary>
    private byte[] SeedVbd(ushort frontend, ReadOnlySpan<byte> payload)
    {
        if (payload.Length < 3 || payload[0] > 15 || payload[1] > 1 || payload.Length - 2 > XenStoreLinkWire.MaxValue)
        {
            return XenStoreLinkWire.Error("EINVAL");
        }

        string target = Encoding.UTF8.GetString(payload[2..]);
        if (XenDriverDomainLayout.PhysicalDevice(target) is not { } physicalDevice)
        {
            // blkback opens a block device of the driver domain's: its own xvda..xvdp, no hotplug script resolves anything else.
            return XenStoreLinkWire.Error("EINVAL");
        }

        try
        {
            string path = XenDriverDomainLayout.SeedBackend(store, frontend, self, payload[0], target, physicalDevice, readOnly: payload[1] == 1);
            return XenStoreLinkWire.Ok(Encoding.UTF8.GetBytes(path));
        }
        catch (Exception e) when (e is XenStoreException or ArgumentException)
        {
            return XenStoreLinkWire.Error(e is XenStoreException x ? x.Error : "EINVAL");
        }
    }

    private void OnRoutedWatchEvent(ushort holder, ReadOnlySpan<byte> payload)
    {
        int nul = payload.IndexOf((byte)0);
        if (nul <= 0 || !_routedWatches.TryGetValue(Encoding.UTF8.GetString(payload[..nul]), out var watch) || watch.Holder != holder)
        {
            return;   // not a routed watch of ours (or another domain's claim to one)
        }

        watch.Fire(Encoding.UTF8.GetString(payload[(nul + 1)..]), watch.Token);
    }

    private byte[] Call(ushort holder, byte op, string path, string value = "")
    {
        byte[]? reply = link.Request(holder, XenLinkMessageType.XenStore, XenStoreLinkWire.Request(op, path, value));
        if (reply is null or { Length: 0 })
        {
            throw new XenStoreException("ENOENT", $"domain {holder}'s store is not there");
        }

        if (reply[0] != 0)
        {
            string errno = Encoding.ASCII.GetString(reply, 1, Math.Min(reply.Length - 1, 16));
            throw new XenStoreException(errno, $"domain {holder}'s store refused {path}: {errno}");
        }

        return reply[1..];
    }
}
