using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using SharpVisor.Xen;

namespace SharpVisor.Host.Vmm;

/// <summary>
/// A driver domain's requests to the XenStore held by another domain's VMM (docs/xen.md,
/// "Driver domains"), over the inter-domain link; that VMM runs them as this domain.
/// </summary>
internal sealed class XenStoreLinkClient(XenInterdomainLink link, ushort holder) : IXenStoreClient
{
    private readonly ConcurrentDictionary<string, Action> _watches = new();
    private int _nextToken;

    public string? Read(string path) =>
        Call(XenStoreLinkWire.Read, path) is { } data ? Encoding.UTF8.GetString(data) : null;

    public IReadOnlyList<string>? Directory(string path) =>
        Call(XenStoreLinkWire.Directory, path) is { } data
            ? Encoding.UTF8.GetString(data).Split('\0', StringSplitOptions.RemoveEmptyEntries)
            : null;

    public void Write(string path, string value) => CallOrThrow(XenStoreLinkWire.Write, path, value);

    public void Watch(string path, Action changed)
    {
        string token = "dd" + Interlocked.Increment(ref _nextToken).ToString(CultureInfo.InvariantCulture);
        _watches[token] = changed;
        CallOrThrow(XenStoreLinkWire.Watch, path, token);
    }

    /// <summary>A watch this client set fired in the holder's store.</summary>
    public void OnWatchEvent(ReadOnlySpan<byte> token)
    {
        if (_watches.TryGetValue(Encoding.UTF8.GetString(token), out Action? changed))
        {
            changed();
        }
    }

    private byte[]? Call(byte op, string path, string value = "")
    {
        byte[]? reply = link.Request(holder, XenLinkMessageType.XenStore, XenStoreLinkWire.Request(op, path, value));
        return reply is { Length: >= 1 } && reply[0] == 0 ? reply[1..] : null;
    }

    private void CallOrThrow(byte op, string path, string value)
    {
        byte[]? reply = link.Request(holder, XenLinkMessageType.XenStore, XenStoreLinkWire.Request(op, path, value));
        if (reply is null or { Length: 0 })
        {
            throw new XenStoreException("EIO", $"domain {holder}'s store is gone");
        }

        if (reply[0] != 0)
        {
            string errno = Encoding.ASCII.GetString(reply, 1, Math.Min(reply.Length - 1, 16));
            throw new XenStoreException(errno, $"domain {holder}'s store refused {path}: {errno}");
        }
    }
}
