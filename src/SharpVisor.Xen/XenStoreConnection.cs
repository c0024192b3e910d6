using System.Buffers.Binary;
using System.Text;
using SharpVisor.Memory;

namespace SharpVisor.Xen;

/// <summary>
/// One guest's XenStore connection over the shared ring (xen/include/public/io/xs_wire.h): the
/// guest writes xsd_sockmsg requests into `req` and sends on the store event channel; each is
/// served by <see cref="XenStore"/> and answered in `rsp`, watch events too. Ring indices, message
/// lengths (at most 4096 bytes of payload) and payloads are checked; a broken ring fails the
/// connection with one log line rather than the host.
/// </summary>
public sealed class XenStoreConnection
{
    public const int RingSize = 1024;
    public const int MaxPayload = 4096;

    /// <summary>Requests are left in the ring while this many replies wait for room in `rsp` (Xen's quota-outstanding is 20).</summary>
    public const int MaxOutstandingReplies = 32;

    /// <summary>Replies and watch events that may wait for a guest that does not read them; later watch events are dropped.</summary>
    public const int MaxQueuedMessages = 256;
    private const int HeaderSize = 16;
    private const int RspOffset = 1024;
    private const int ReqConsOffset = 2048;
    private const int ReqProdOffset = 2052;
    private const int RspConsOffset = 2056;
    private const int RspProdOffset = 2060;

    private readonly XenDomain _domain;
    private readonly XenStore _store;
    private readonly GuestMemory _memory;
    private readonly XenByteRing _requests;
    private readonly XenByteRing _responses;
    private readonly ushort _guest;
    private readonly Action<string>? _log;
    private readonly object _lock = new();
    private readonly Queue<byte[]> _pending = new();
    private readonly Action<string, string> _onWatch;
    private readonly byte[] _header = new byte[HeaderSize];
    private int _headerFilled;
    private byte[]? _body;
    private int _bodyFilled;
    private bool _failed;
    private bool _loggedDroppedEvent;

    public XenStoreConnection(XenDomain domain, XenStore store, ulong ringAddress, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(domain);
        ArgumentNullException.ThrowIfNull(store);
        _domain = domain;
        _store = store;
        _memory = domain.Memory;
        if ((ringAddress & 0xFFF) != 0 || !_memory.IsValid(ringAddress, 4096))
        {
            throw new ArgumentException($"XenStore ring 0x{ringAddress:x} is not a page of guest RAM");
        }

        _requests = new XenByteRing(_memory, ringAddress, 0, RingSize, ReqConsOffset, ReqProdOffset);
        _responses = new XenByteRing(_memory, ringAddress, RspOffset, RingSize, RspConsOffset, RspProdOffset);
        _guest = domain.DomainId;
        _log = log;
        _onWatch = OnWatch;
        _memory.Fill(ringAddress, 4096, 0);
        Port = domain.OpenBackendPort(Service);
        domain.SetParam(HvmParam.StorePfn, ringAddress >> 12);
        domain.SetParam(HvmParam.StoreEvtchn, (ulong)Port);
    }

    public int Port { get; }

    /// <summary>
    /// Where requests for other domains' trees go (null: a domain alone; they are this store's).
    /// Set before the guest runs.
    /// </summary>
    public IXenStoreRemote? Remote { get; set; }

    public bool Failed => _failed;

    /// <summary>Replies and events waiting for room in `rsp`.</summary>
    public int QueuedMessages
    {
        get
        {
            lock (_lock)
            {
                return _pending.Count;
            }
        }
    }

    /// <summary>The guest sent on the store port: serve every complete request, then flush replies.</summary>
    public void Service()
    {
        bool notify = false;
        lock (_lock)
        {
            // A guest that does not read its replies gets back pressure: its requests wait in the ring.
            while (!_failed && _pending.Count < MaxOutstandingReplies && TryTakeRequest(out XenStoreMessageType type, out uint requestId, out uint transaction, out byte[] payload))
            {
                notify = true;
                _pending.Enqueue(Serve(type, requestId, transaction, payload));
            }

            notify |= Flush();
        }

        if (notify)
        {
            _domain.NotifyGuest(Port);
        }
    }

    private void OnWatch(string path, string token)
    {
        lock (_lock)
        {
            if (_failed)
            {
                return;
            }

            byte[] payload = Encoding.UTF8.GetBytes(path + "\0" + token + "\0");
            if (_pending.Count >= MaxQueuedMessages - 1 || payload.Length > MaxPayload)
            {
                // One slot stays for the reply of the request being served; an event too long
                // for xs_wire (a deep path and a long token) cannot be sent either.
                _store.Counters.Increment("watch-events-dropped");
                if (!_loggedDroppedEvent)
                {
                    _loggedDroppedEvent = true;
                    _log?.Invoke($"xenstore: domain {_guest} does not read its ring: watch events beyond {MaxQueuedMessages} queued messages (or longer than {MaxPayload} bytes) are dropped");
                }

                return;
            }

            _pending.Enqueue(Message(XenStoreMessageType.WatchEvent, 0, 0, payload));
            if (!Flush())
            {
                return;
            }
        }

        _domain.NotifyGuest(Port);
    }

    private byte[] Serve(XenStoreMessageType type, uint requestId, uint transaction, byte[] payload)
    {
        _store.Counters.Increment("requests");
        _store.Counters.Increment(type.ToString());
        try
        {
            string[] args = Encoding.UTF8.GetString(payload).Split('\0');
            string Arg(int i) => i < args.Length ? args[i] : throw new XenStoreException("EINVAL", "missing argument");
            byte[] reply = Remote is { } remote && args.Length > 0 && HolderOf(args[0]) is ushort holder
                ? ServeRemote(remote, holder, type, Arg, payload)
                : type switch
            {
                XenStoreMessageType.Read => _store.Read(_guest, transaction, Arg(0)),
                XenStoreMessageType.Directory => Strings(_store.Directory(_guest, transaction, Arg(0))),
                XenStoreMessageType.GetPerms => Strings(_store.GetPerms(_guest, transaction, Arg(0))),
                XenStoreMessageType.Write => Do(() => _store.Write(_guest, transaction, Arg(0), WriteValue(payload))),
                XenStoreMessageType.Mkdir => Do(() => _store.Mkdir(_guest, transaction, Arg(0))),
                XenStoreMessageType.Rm => Do(() => _store.Remove(_guest, transaction, Arg(0))),
                XenStoreMessageType.SetPerms => Do(() => _store.SetPerms(_guest, transaction, Arg(0), args.Skip(1).Where(a => a.Length > 0).ToArray())),
                XenStoreMessageType.Watch => Do(() => _store.AddWatch(_guest, Arg(0), Arg(1), _onWatch)),
                XenStoreMessageType.Unwatch => Do(() => _store.RemoveWatch(_guest, Arg(0), Arg(1), _onWatch)),
                XenStoreMessageType.ResetWatches => Do(() => _store.RemoveWatches(_onWatch)),
                XenStoreMessageType.TransactionStart => Encoding.ASCII.GetBytes(_store.StartTransaction(_guest).ToString(System.Globalization.CultureInfo.InvariantCulture) + "\0"),
                XenStoreMessageType.TransactionEnd => Do(() => _store.EndTransaction(_guest, transaction, Arg(0) == "T")),
                XenStoreMessageType.GetDomainPath => Encoding.ASCII.GetBytes(XenStore.DomainPath(ushort.TryParse(Arg(0), out ushort d) ? d : throw new XenStoreException("EINVAL", "bad domain id")) + "\0"),
                XenStoreMessageType.IsDomainIntroduced => "T\0"u8.ToArray(),
                _ => throw new XenStoreException("EINVAL", $"message type {(uint)type} is not for a guest"),
            };
            if (reply.Length > MaxPayload)
            {
                // A directory of many long names: xs_wire cannot carry it (xenstored answers E2BIG too).
                throw new XenStoreException("E2BIG", $"a reply of {reply.Length} bytes");
            }

            return Message(type, requestId, transaction, reply);
        }
        catch (XenStoreException e)
        {
            _store.Counters.Increment($"error-{e.Error}");
            return Message(XenStoreMessageType.Error, requestId, transaction, Encoding.ASCII.GetBytes(e.Error + "\0"));
        }
    }

    /// <summary>
    /// The domain whose VMM holds <paramref name="path"/>: another domain's directory
    /// (<c>/local/domain/&lt;N&gt;/…</c>, N neither this domain nor Dom0) that this store does not
    /// hold itself — a SharpVisor driver domain's back-end directories do live here; null: this store's.
    /// </summary>
    private ushort? HolderOf(string path)
    {
        const string Prefix = "/local/domain/";
        if (!path.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return null;
        }

        int end = path.IndexOf('/', Prefix.Length);
        string id = end < 0 ? path[Prefix.Length..] : path[Prefix.Length..end];
        if (!ushort.TryParse(id, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out ushort domain)
            || domain == 0 || domain == _guest || domain >= XenDomain.DomidSelf || id != domain.ToString(System.Globalization.CultureInfo.InvariantCulture))
        {
            return null;
        }

        return _store.TryReadString(XenStore.DomainPath(domain)) is null ? domain : null;
    }

    /// <summary>
    /// A request for another domain's tree, run by its VMM as this domain. Outside any transaction:
    /// a transaction's remote parts happen at once (Linux's back and front ends only read the
    /// other end's nodes and watch them; what they write in transactions is their own).
    /// </summary>
    private byte[] ServeRemote(IXenStoreRemote remote, ushort holder, XenStoreMessageType type, Func<int, string> arg, byte[] payload)
    {
        _store.Counters.Increment("routed-requests");
        switch (type)
        {
            case XenStoreMessageType.Read:
                return remote.Read(holder, arg(0));
            case XenStoreMessageType.Directory:
                return Strings(remote.Directory(holder, arg(0)));
            case XenStoreMessageType.Write:
                remote.Write(holder, arg(0), Encoding.UTF8.GetString(WriteValue(payload)));
                return "OK\0"u8.ToArray();
            case XenStoreMessageType.Watch:
                remote.Watch(holder, arg(0), arg(1), _onWatch);
                return "OK\0"u8.ToArray();
            case XenStoreMessageType.Unwatch:
                // The watch stays in the holder's store until this connection or the holder ends; Linux
                // drops events for a token it no longer has.
                return "OK\0"u8.ToArray();
            default:
                throw new XenStoreException("EACCES", $"{type} of another domain's node is not routed");
        }
    }

    /// <summary>XS_WRITE's value: the bytes after the path's NUL (counted in bytes: the path may not be UTF-8).</summary>
    private static ReadOnlySpan<byte> WriteValue(byte[] payload)
    {
        int end = Array.IndexOf(payload, (byte)0);
        return end >= 0 ? payload.AsSpan(end + 1) : throw new XenStoreException("EINVAL", "a write without a value");
    }

    private static byte[] Do(Action action)
    {
        action();
        return "OK\0"u8.ToArray();
    }

    private static byte[] Strings(IEnumerable<string> items) => Encoding.UTF8.GetBytes(string.Concat(items.Select(i => i + "\0")));

    private static byte[] Message(XenStoreMessageType type, uint requestId, uint transaction, byte[] payload)
    {
        var message = new byte[HeaderSize + payload.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(message, (uint)type);
        BinaryPrimitives.WriteUInt32LittleEndian(message.AsSpan(4), requestId);
        BinaryPrimitives.WriteUInt32LittleEndian(message.AsSpan(8), transaction);
        BinaryPrimitives.WriteUInt32LittleEndian(message.AsSpan(12), (uint)payload.Length);
        payload.CopyTo(message, HeaderSize);
        return message;
    }

    /// <summary>
    /// Consumes what the guest has written of the current request (Linux writes the header and
    /// the payload separately, and notifies only when it found the ring empty, so the header is
    /// taken off as soon as it is there); true once a whole request is in.
    /// </summary>
    private bool TryTakeRequest(out XenStoreMessageType type, out uint requestId, out uint transaction, out byte[] payload)
    {
        type = default;
        requestId = transaction = 0;
        payload = [];
        if (!_requests.TryGetUnread(out _))
        {
            Fail($"request ring indices {_requests.Describe()} are more than a ring apart");
            return false;
        }

        if (_headerFilled < HeaderSize)
        {
            if (!_requests.TryRead(_header.AsSpan(_headerFilled), out int n))
            {
                Fail($"request ring indices {_requests.Describe()} are more than a ring apart");
                return false;
            }

            _headerFilled += n;
            if (_headerFilled == HeaderSize)
            {
                uint length = BinaryPrimitives.ReadUInt32LittleEndian(_header.AsSpan(12));
                if (length > MaxPayload)
                {
                    Fail($"a request of {length} bytes exceeds {MaxPayload}");
                    return false;
                }

                _body = new byte[length];
                _bodyFilled = 0;
            }
        }

        if (_body is not null)
        {
            if (!_requests.TryRead(_body.AsSpan(_bodyFilled), out int n))
            {
                Fail($"request ring indices {_requests.Describe()} are more than a ring apart");
                return false;
            }

            _bodyFilled += n;
        }

        if (_body is null || _bodyFilled < _body.Length)
        {
            return false;
        }

        type = (XenStoreMessageType)BinaryPrimitives.ReadUInt32LittleEndian(_header);
        requestId = BinaryPrimitives.ReadUInt32LittleEndian(_header.AsSpan(4));
        transaction = BinaryPrimitives.ReadUInt32LittleEndian(_header.AsSpan(8));
        payload = _body;
        _body = null;
        _headerFilled = 0;
        return true;
    }

    /// <summary>Writes queued replies and events into `rsp` as far as it has room; true when something was written.</summary>
    private bool Flush()
    {
        bool wrote = false;
        while (!_failed && _pending.TryPeek(out byte[]? message))
        {
            // A reply bigger than the ring goes in pieces: the guest reads as we write.
            if (!_responses.TryWrite(message, out int written))
            {
                Fail($"response ring indices {_responses.Describe()} are more than a ring apart");
                return wrote;
            }

            if (written == 0)
            {
                return wrote;
            }

            wrote = true;
            _pending.Dequeue();
            if (written < message.Length)
            {
                // Requeue the rest at the front: rebuild the queue with it first.
                byte[][] rest = [message[written..], .. _pending];
                _pending.Clear();
                foreach (byte[] m in rest)
                {
                    _pending.Enqueue(m);
                }

                return wrote;
            }
        }

        return wrote;
    }

    /// <summary>Ends the connection (the domain is gone): its watches and open transactions go with it.</summary>
    public void Close()
    {
        lock (_lock)
        {
            Stop();
        }
    }

    private void Fail(string reason)
    {
        Stop();
        _log?.Invoke($"xenstore: domain {_guest}: {reason}; the connection stops");
    }

    private void Stop()
    {
        _failed = true;
        _pending.Clear();
        _store.RemoveWatches(_onWatch);
        _store.AbortTransactions(_guest);
    }
}
