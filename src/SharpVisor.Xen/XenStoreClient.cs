using System.Text;

namespace SharpVisor.Xen;

/// <summary>
/// <see cref="IXenStoreClient"/> over a <see cref="XenStore"/> in this process, as domain
/// <see cref="Caller"/>: what the store's owner runs for a peer's requests (the inter-domain link)
/// and what in-process tests use.
/// </summary>
public sealed class XenStoreClient : IXenStoreClient
{
    private readonly XenStore _store;
    private readonly List<Action<string, string>> _watches = [];

    public XenStoreClient(XenStore store, ushort caller)
    {
        ArgumentNullException.ThrowIfNull(store);
        _store = store;
        Caller = caller;
    }

    public ushort Caller { get; }

    public string? Read(string path)
    {
        try
        {
            return Encoding.UTF8.GetString(_store.Read(Caller, 0, path));
        }
        catch (XenStoreException)
        {
            return null;
        }
    }

    public IReadOnlyList<string>? Directory(string path)
    {
        try
        {
            return _store.Directory(Caller, 0, path);
        }
        catch (XenStoreException)
        {
            return null;
        }
    }

    public void Write(string path, string value) => _store.Write(Caller, path, value);

    public void Watch(string path, Action changed)
    {
        ArgumentNullException.ThrowIfNull(changed);
        Action<string, string> fire = (_, _) => changed();
        lock (_watches)
        {
            _watches.Add(fire);
        }

        _store.AddWatch(Caller, path, "driver-domain", fire);
    }

    /// <summary>As <see cref="Watch"/>, with the path that changed (a guest's watch, routed here from its own VMM).</summary>
    public void WatchPaths(string path, Action<string> changed)
    {
        ArgumentNullException.ThrowIfNull(changed);
        Action<string, string> fire = (changedPath, _) => changed(changedPath);
        lock (_watches)
        {
            _watches.Add(fire);
        }

        _store.AddWatch(Caller, path, "routed", fire);
    }

    /// <summary>Drops every watch made through this client (its domain is gone).</summary>
    public void RemoveWatches()
    {
        lock (_watches)
        {
            foreach (Action<string, string> fire in _watches)
            {
                _store.RemoveWatches(fire);
            }

            _watches.Clear();
        }
    }
}
