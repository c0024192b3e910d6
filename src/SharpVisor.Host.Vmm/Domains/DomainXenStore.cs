using System.Text;
using SharpVisor.Host.Http;
using SharpVisor.Xen;

namespace SharpVisor.Host.Domains;

/// <summary>
/// The toolstack's hands on a Xen domain's XenStore, as Dom0's xenstore-ls/read/write/rm: full
/// permissions (domain 0), paths relative to the domain's home (/local/domain/ID) or absolute,
/// failures as the API's errors (a missing node is 404).
/// </summary>
public sealed class DomainXenStore(XenStore store, ushort domainId)
{
    private const ushort Dom0 = 0;

    /// <summary>The most nodes one listing returns: a store holds at most a few thousand per domain.</summary>
    public const int MaxListedNodes = 10_000;

    public string HomePath => XenStore.DomainPath(domainId);

    /// <summary>The domain's event channels to other domains of the daemon, as the toolstack shows them (xen-channels); null: none kept.</summary>
    public Func<IReadOnlyList<XenChannel>>? Channels { get; init; }

    /// <summary>The node at <paramref name="path"/> and everything below it, depth first, parents before children.</summary>
    public IReadOnlyList<XenStoreNode> List(string path)
    {
        string start = Absolute(path);
        var nodes = new List<XenStoreNode>();
        Guard(() =>
        {
            Walk(start, nodes);
            return 0;
        });
        return nodes;
    }

    public string Read(string path) => Guard(() => Encoding.UTF8.GetString(store.Read(Dom0, 0, Absolute(path))));

    public void Write(string path, string value) => Guard(() =>
    {
        store.Write(Dom0, 0, Absolute(path), Encoding.UTF8.GetBytes(value));
        return 0;
    });

    public void Remove(string path) => Guard(() =>
    {
        store.Remove(Dom0, 0, Absolute(path));
        return 0;
    });

    /// <summary>What xl mem-set does: the guest's balloon driver watches memory/target (KiB) and follows it.</summary>
    public void SetMemoryTarget(long mib) => Write("memory/target", (mib * 1024).ToString(System.Globalization.CultureInfo.InvariantCulture));

    private void Walk(string path, List<XenStoreNode> nodes)
    {
        if (nodes.Count >= MaxListedNodes)
        {
            throw ApiException.BadRequest($"more than {MaxListedNodes} XenStore nodes below {path}: list a narrower path");
        }

        nodes.Add(new XenStoreNode { Path = path, Value = Encoding.UTF8.GetString(store.Read(Dom0, 0, path)) });
        foreach (string child in store.Directory(Dom0, 0, path))
        {
            Walk(path == "/" ? $"/{child}" : $"{path}/{child}", nodes);
        }
    }

    private string Absolute(string path)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            throw ApiException.BadRequest("a XenStore path is required");
        }

        if (!path.StartsWith('/'))
        {
            return $"{HomePath}/{path.TrimEnd('/')}";
        }

        string trimmed = path.TrimEnd('/');
        return trimmed.Length == 0 ? "/" : trimmed;
    }

    private static T Guard<T>(Func<T> operation)
    {
        try
        {
            return operation();
        }
        catch (XenStoreException e) when (e.Error == "ENOENT")
        {
            throw ApiException.NotFound($"no XenStore node: {e.Message}");
        }
        catch (XenStoreException e)
        {
            throw ApiException.BadRequest($"XenStore refused it ({e.Error}): {e.Message}");
        }
    }
}
