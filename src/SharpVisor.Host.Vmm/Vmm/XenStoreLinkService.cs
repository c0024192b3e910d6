using System.Collections.Concurrent;
using System.Text;
using SharpVisor.Xen;

namespace SharpVisor.Host.Vmm;

/// <summary>
/// The XenStore half a domain's VMM serves its peers (docs/xen.md, "Driver domains"): this
/// domain's store holds its own tree and the back-end directories of its vbds, so a driver
/// domain's requests for them come here and run as that domain — the store's permissions and
/// per-domain quotas apply to it as to a guest — and its watches fire back over the link.
/// </summary>
internal sealed class XenStoreLinkService(XenStore store, XenInterdomainLink link) : IXenLinkService
{
    private readonly ConcurrentDictionary<ushort, XenStoreClient> _peers = new();

    public byte[]? Handle(ushort peer, XenLinkMessageType type, ReadOnlySpan<byte> payload)
    {
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

    /// <summary>A gone peer's watches go with it.</summary>
    public void PeerGone(ushort peer)
    {
        if (_peers.TryRemove(peer, out XenStoreClient? client))
        {
            client.RemoveWatches();
        }
    }
}
