using System.Text;

namespace SharpVisor.Xen;

/// <summary>
/// Dom0's XenStore: a tree of nodes with values and per-domain permissions, watches, and
/// transactions with real conflict detection (a commit whose reads or writes were changed by
/// someone else since the transaction began fails with EAGAIN). Domain 0 (SharpVisor's back ends
/// and toolstack) calls it directly; a guest reaches it through <see cref="XenStoreConnection"/>.
/// Paths, values, node counts, watches and transactions are bounded per domain.
/// </summary>
public sealed class XenStore
{
    public const int MaxPathLength = 3072;
    public const int MaxValueLength = 4096;
    public const int MaxNodesPerDomain = 2000;
    public const int MaxWatchesPerDomain = 128;
    public const int MaxTransactionsPerDomain = 16;

    /// <summary>Nodes one transaction may touch (Xen's quota-transaction-nodes is 1024); more is ENOSPC.</summary>
    public const int MaxTransactionNodes = 1024;

    private readonly object _lock = new();
    private readonly Dictionary<string, Node> _nodes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _changedAt = new(StringComparer.Ordinal);
    private readonly Dictionary<uint, Transaction> _transactions = new();
    private readonly List<Watch> _watches = new();
    private long _generation;
    private uint _nextTransaction = 1;

    public XenStore()
    {
        _nodes["/"] = new Node(["n0"]);
    }

    /// <summary>Nodes in the live tree, all domains'.</summary>
    public int NodeCount
    {
        get
        {
            lock (_lock)
            {
                return _nodes.Count;
            }
        }
    }

    /// <summary>Open transactions, all domains'.</summary>
    public int TransactionCount
    {
        get
        {
            lock (_lock)
            {
                return _transactions.Count;
            }
        }
    }

    /// <summary>Requests served, by type; for metrics.</summary>
    public Machine.ExitCounters Counters { get; } = new();

    private sealed class Node
    {
        private string[] _perms = [];

        public Node(string[] perms) => Perms = perms;

        public byte[] Value { get; set; } = [];

        public string[] Perms
        {
            get => _perms;
            set
            {
                _perms = value;
                Owner = ushort.TryParse(value[0].AsSpan(1), out ushort owner) ? owner : (ushort)0;
            }
        }

        /// <summary>The domain in the first entry, parsed once: the quota counts nodes by owner on every create.</summary>
        public ushort Owner { get; private set; }

        public SortedSet<string> Children { get; } = new(StringComparer.Ordinal);

        public Node Clone()
        {
            var copy = new Node(Perms) { Value = Value };
            copy.Children.UnionWith(Children);
            return copy;
        }
    }

    /// <summary>A watch; <paramref name="Relative"/>: registered with a path relative to the domain's, so its events are too (as xenstored's).</summary>
    private sealed record Watch(ushort Domain, string Path, string Token, Action<string, string> Fire, bool Relative = false);

    private sealed class Transaction
    {
        public required ushort Domain { get; init; }

        public required long StartGeneration { get; init; }

        public required Dictionary<string, Node> Nodes { get; init; }

        public HashSet<string> Accessed { get; } = new(StringComparer.Ordinal);

        public List<Action<List<string>>> Log { get; } = new();
    }

    /// <summary>"/local/domain/N": where a domain's relative paths start.</summary>
    public static string DomainPath(ushort domain) => $"/local/domain/{domain}";

    public byte[] Read(ushort caller, uint transaction, string path)
    {
        lock (_lock)
        {
            path = Normalize(caller, path);
            Node node = Find(caller, transaction, path) ?? throw new XenStoreException("ENOENT", $"{path} does not exist");
            CheckAccess(caller, node, write: false, path);
            return node.Value;
        }
    }

    public string? TryReadString(string path)
    {
        try
        {
            return Encoding.UTF8.GetString(Read(0, 0, path));
        }
        catch (XenStoreException)
        {
            return null;
        }
    }

    public IReadOnlyList<string> Directory(ushort caller, uint transaction, string path)
    {
        lock (_lock)
        {
            path = Normalize(caller, path);
            Node node = Find(caller, transaction, path) ?? throw new XenStoreException("ENOENT", $"{path} does not exist");
            CheckAccess(caller, node, write: false, path);
            return node.Children.ToArray();
        }
    }

    public string[] GetPerms(ushort caller, uint transaction, string path)
    {
        lock (_lock)
        {
            path = Normalize(caller, path);
            Node node = Find(caller, transaction, path) ?? throw new XenStoreException("ENOENT", $"{path} does not exist");
            CheckAccess(caller, node, write: false, path);
            return node.Perms;
        }
    }

    public void Write(ushort caller, uint transaction, string path, ReadOnlySpan<byte> value)
    {
        if (value.Length > MaxValueLength)
        {
            throw new XenStoreException("E2BIG", $"a value of {value.Length} bytes");
        }

        byte[] copy = value.ToArray();
        Mutate(caller, transaction, path, (nodes, p, fire) =>
        {
            Node node = Create(caller, nodes, p, fire);
            CheckAccess(caller, node, write: true, p);
            node.Value = copy;
            fire(p);
        });
    }

    public void Write(ushort caller, string path, string value) => Write(caller, 0, path, Encoding.UTF8.GetBytes(value));

    public void Mkdir(ushort caller, uint transaction, string path) =>
        Mutate(caller, transaction, path, (nodes, p, fire) =>
        {
            if (!nodes.ContainsKey(p))
            {
                Create(caller, nodes, p, fire);
            }
        });

    public void Remove(ushort caller, uint transaction, string path) =>
        Mutate(caller, transaction, path, (nodes, p, fire) =>
        {
            if (p == "/")
            {
                throw new XenStoreException("EINVAL", "the root cannot be removed");
            }

            Node node = nodes.GetValueOrDefault(p) ?? throw new XenStoreException("ENOENT", $"{p} does not exist");
            Node parent = nodes[Parent(p)];
            CheckAccess(caller, parent, write: true, Parent(p));
            RemoveTree(nodes, p, fire);
            parent.Children.Remove(Name(p));
            fire(Parent(p));
        });

    public void SetPerms(ushort caller, uint transaction, string path, string[] perms)
    {
        if (perms.Length == 0 || perms.Length > 64 || perms.Any(p => !IsPerm(p)))
        {
            throw new XenStoreException("EINVAL", "bad permissions");
        }

        Mutate(caller, transaction, path, (nodes, p, fire) =>
        {
            Node node = nodes.GetValueOrDefault(p) ?? throw new XenStoreException("ENOENT", $"{p} does not exist");
            if (caller != 0 && Owner(node) != caller)
            {
                throw new XenStoreException("EACCES", $"domain {caller} does not own {p}");
            }

            if (caller != 0 && ushort.TryParse(perms[0].AsSpan(1), out ushort owner) && owner != caller)
            {
                // Giving nodes away would escape the node quota: only Dom0 changes owners.
                throw new XenStoreException("EPERM", $"domain {caller} may not give {p} to domain {owner}");
            }

            node.Perms = perms;
            fire(p);
        });
    }

    /// <summary>Registers a watch; it fires at once (as Xen's does) and then on every change at or below <paramref name="path"/>.</summary>
    public void AddWatch(ushort caller, string path, string token, Action<string, string> fire)
    {
        ArgumentNullException.ThrowIfNull(fire);
        string given = path;
        bool relative = !path.StartsWith('@') && !path.StartsWith('/');
        lock (_lock)
        {
            if (!path.StartsWith('@'))
            {
                path = Normalize(caller, path);
            }

            if (_watches.Count(w => w.Domain == caller) >= MaxWatchesPerDomain)
            {
                throw new XenStoreException("E2BIG", $"domain {caller} has too many watches");
            }

            if (_watches.Any(w => w.Domain == caller && w.Path == path && w.Token == token && w.Fire == fire))
            {
                throw new XenStoreException("EEXIST", $"watch {path} {token} exists");
            }

            _watches.Add(new Watch(caller, path, token, fire, relative));
        }

        fire(relative ? given : path, token);
    }

    public void RemoveWatch(ushort caller, string path, string token, Action<string, string> fire)
    {
        lock (_lock)
        {
            if (!path.StartsWith('@'))
            {
                path = Normalize(caller, path);
            }

            if (_watches.RemoveAll(w => w.Domain == caller && w.Path == path && w.Token == token && w.Fire == fire) == 0)
            {
                throw new XenStoreException("ENOENT", $"no watch {path} {token}");
            }
        }
    }

    /// <summary>Ends <paramref name="domain"/>'s open transactions without committing them (its connection ended).</summary>
    public void AbortTransactions(ushort domain)
    {
        lock (_lock)
        {
            foreach (uint id in _transactions.Where(t => t.Value.Domain == domain).Select(t => t.Key).ToArray())
            {
                _transactions.Remove(id);
            }
        }
    }

    /// <summary>Drops every watch whose callback is <paramref name="fire"/> (a connection's reset).</summary>
    public void RemoveWatches(Action<string, string> fire)
    {
        lock (_lock)
        {
            _watches.RemoveAll(w => w.Fire == fire);
        }
    }

    public uint StartTransaction(ushort caller)
    {
        lock (_lock)
        {
            if (_transactions.Values.Count(t => t.Domain == caller) >= MaxTransactionsPerDomain)
            {
                throw new XenStoreException("EBUSY", $"domain {caller} has too many transactions");
            }

            uint id = _nextTransaction++;
            if (_nextTransaction == 0)
            {
                _nextTransaction = 1;
            }

            _transactions[id] = new Transaction
            {
                Domain = caller,
                StartGeneration = _generation,
                Nodes = _nodes.ToDictionary(p => p.Key, p => p.Value.Clone(), StringComparer.Ordinal),
            };
            return id;
        }
    }

    /// <summary>Ends a transaction: commits (EAGAIN when anything it touched changed since it began) or aborts.</summary>
    public void EndTransaction(ushort caller, uint id, bool commit)
    {
        var fired = new List<string>();
        lock (_lock)
        {
            if (!_transactions.TryGetValue(id, out Transaction? transaction) || transaction.Domain != caller)
            {
                throw new XenStoreException("ENOENT", $"no transaction {id}");
            }

            _transactions.Remove(id);
            if (!commit)
            {
                return;
            }

            if (transaction.Accessed.Any(p => _changedAt.GetValueOrDefault(p) > transaction.StartGeneration))
            {
                Counters.Increment("transaction-conflicts");
                throw new XenStoreException("EAGAIN", $"transaction {id} conflicts with a change made since it began");
            }

            // Replay the transaction's changes on the live tree; they were checked when made.
            foreach (Action<List<string>> change in transaction.Log)
            {
                change(fired);
            }
        }

        FireWatches(fired);
    }

    /// <summary>Applies a change to the live tree (transaction 0) or to a transaction's copy, recording it for the commit.</summary>
    private void Mutate(ushort caller, uint transactionId, string path, Action<Dictionary<string, Node>, string, Action<string>> change)
    {
        var fired = new List<string>();
        lock (_lock)
        {
            path = Normalize(caller, path);
            if (transactionId == 0)
            {
                change(_nodes, path, p => Changed(p, fired));
            }
            else
            {
                Transaction transaction = TransactionOf(caller, transactionId);
                if (transaction.Log.Count >= MaxTransactionNodes || transaction.Accessed.Count >= MaxTransactionNodes)
                {
                    throw new XenStoreException("ENOSPC", $"transaction {transactionId} touched too many nodes");
                }

                var touched = new List<string>();
                change(transaction.Nodes, path, touched.Add);
                transaction.Accessed.UnionWith(touched);
                transaction.Accessed.Add(path);
                transaction.Log.Add(f => change(_nodes, path, p => Changed(p, f)));
            }
        }

        FireWatches(fired);
    }

    private void Changed(string path, List<string> fired)
    {
        _changedAt[path] = ++_generation;
        fired.Add(path);
    }

    private void FireWatches(List<string> paths)
    {
        if (paths.Count == 0)
        {
            return;
        }

        List<(Watch Watch, string Path)> due;
        lock (_lock)
        {
            due = [];
            foreach (string path in paths.Distinct())
            {
                foreach (Watch w in _watches)
                {
                    bool below = path == w.Path || path.StartsWith(w.Path == "/" ? "/" : w.Path + "/", StringComparison.Ordinal);
                    bool above = w.Path.StartsWith(path + "/", StringComparison.Ordinal) && !_nodes.ContainsKey(w.Path);
                    if ((below || above) && CanSee(w.Domain, path))
                    {
                        due.Add((w, above ? w.Path : path));
                    }
                }
            }
        }

        foreach ((Watch w, string path) in due)
        {
            Counters.Increment("watch-events");

            // Linux's xenbus takes a relative watch's event path apart by levels ("backend/vbd/<fe>/<dev>").
            string prefix = DomainPath(w.Domain) + "/";
            w.Fire(w.Relative && path.StartsWith(prefix, StringComparison.Ordinal) ? path[prefix.Length..] : path, w.Token);
        }
    }

    private bool CanSee(ushort domain, string path)
    {
        string probe = path;
        while (!_nodes.ContainsKey(probe))
        {
            probe = Parent(probe);
        }

        return domain == 0 || Allows(_nodes[probe], domain, write: false);
    }

    private Node? Find(ushort caller, uint transactionId, string path)
    {
        if (transactionId == 0)
        {
            return _nodes.GetValueOrDefault(path);
        }

        Transaction transaction = TransactionOf(caller, transactionId);
        if (transaction.Accessed.Count >= MaxTransactionNodes && !transaction.Accessed.Contains(path))
        {
            // Each path read is remembered for the conflict check: bounded like the writes.
            throw new XenStoreException("ENOSPC", $"transaction {transactionId} touched too many nodes");
        }

        transaction.Accessed.Add(path);
        return transaction.Nodes.GetValueOrDefault(path);
    }

    private Transaction TransactionOf(ushort caller, uint id) =>
        _transactions.TryGetValue(id, out Transaction? t) && t.Domain == caller ? t : throw new XenStoreException("ENOENT", $"no transaction {id}");

    /// <summary>Creates <paramref name="path"/> and missing parents; new nodes inherit the parent's permissions, owned by the creator.</summary>
    private static Node Create(ushort caller, Dictionary<string, Node> nodes, string path, Action<string> fire)
    {
        if (nodes.TryGetValue(path, out Node? existing))
        {
            return existing;
        }

        string parentPath = Parent(path);
        Node parent = Create(caller, nodes, parentPath, fire);
        CheckAccess(caller, parent, write: true, parentPath);
        string[] perms = (string[])parent.Perms.Clone();
        if (caller != 0)
        {
            perms[0] = perms[0][0] + caller.ToString(System.Globalization.CultureInfo.InvariantCulture);

            // Checked before the node exists: a refused write leaves nothing behind.
            if (nodes.Values.Count(n => n.Owner == caller) >= MaxNodesPerDomain)
            {
                throw new XenStoreException("ENOSPC", $"domain {caller} owns too many nodes");
            }
        }

        var node = new Node(perms);
        nodes[path] = node;
        parent.Children.Add(Name(path));
        fire(path);
        fire(parentPath);
        return node;
    }

    private static void RemoveTree(Dictionary<string, Node> nodes, string path, Action<string> fire)
    {
        foreach (string child in nodes[path].Children.ToArray())
        {
            RemoveTree(nodes, path + "/" + child, fire);
        }

        nodes.Remove(path);
        fire(path);
    }

    private static void CheckAccess(ushort caller, Node node, bool write, string path)
    {
        if (!Allows(node, caller, write))
        {
            throw new XenStoreException("EACCES", $"domain {caller} may not {(write ? "write" : "read")} {path}");
        }
    }

    /// <summary>Dom0 may do anything; the owner too; others get their own entry, else the default (the first entry's letter).</summary>
    private static bool Allows(Node node, ushort domain, bool write)
    {
        if (domain == 0 || Owner(node) == domain)
        {
            return true;
        }

        char perm = node.Perms[0][0];
        foreach (string entry in node.Perms.Skip(1))
        {
            if (ushort.TryParse(entry.AsSpan(1), out ushort d) && d == domain)
            {
                perm = entry[0];
                break;
            }
        }

        return perm == 'b' || perm == (write ? 'w' : 'r');
    }

    private static ushort Owner(Node node) => node.Owner;

    private static bool IsPerm(string p) => p.Length >= 2 && p[0] is 'n' or 'r' or 'w' or 'b' && ushort.TryParse(p.AsSpan(1), out _);

    /// <summary>A checked absolute path: relative paths start at the caller's /local/domain/N.</summary>
    public static string Normalize(ushort caller, string path)
    {
        if (path.Length == 0)
        {
            throw new XenStoreException("EINVAL", "an empty path");
        }

        if (!path.StartsWith('/'))
        {
            path = DomainPath(caller) + "/" + path;
        }

        if (path.Length > MaxPathLength || (path.Length > 1 && path.EndsWith('/')) || path.Contains("//", StringComparison.Ordinal)
            || path.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '/' or '-' or '_' or '@')))
        {
            throw new XenStoreException("EINVAL", $"bad path '{(path.Length > 80 ? path[..80] + "..." : path)}'");
        }

        return path;
    }

    private static string Parent(string path)
    {
        int slash = path.LastIndexOf('/');
        return slash <= 0 ? "/" : path[..slash];
    }

    private static string Name(string path) => path[(path.LastIndexOf('/') + 1)..];
}
