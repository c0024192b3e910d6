using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Globalization;
using System.Net.Sockets;
using SharpVisor.Host.Http;
using SharpVisor.Xen;

namespace SharpVisor.Host.Vmm;

/// <summary>
/// A Xen domain's way to the other domains of its daemon (docs/xen.md, "Inter-domain"): it
/// listens on <c>DIR/&lt;domid&gt;/xen-link.sock</c> and reaches domain N at
/// <c>DIR/N/xen-link.sock</c>. A peer's requests are served here against this domain's own state
/// (<see cref="XenDomain.AcceptInterdomainBind"/>, its <see cref="GrantTable"/>); this domain's
/// calls go out on one connection per peer. A connection that ends means the peer is gone: its
/// ports are unbound (<see cref="XenDomain.PeerGone"/>) and calls waiting on it fail at once.
/// </summary>
public sealed partial class XenInterdomainLink : IXenInterdomainLink, IDisposable
{
    public const string SocketName = "xen-link.sock";

    /// <summary>How long a call waits for a live but silent peer before it fails like a missing one.</summary>
    public static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(10);

    private readonly string _directory;
    private readonly ushort _self;
    private readonly XenDomain _domain;
    private readonly GrantTable _grants;
    private readonly Action<string>? _log;
    private readonly Socket _listener;
    private readonly ConcurrentDictionary<ushort, Lazy<Outbound?>> _outbound = new();
    private readonly ConcurrentDictionary<Socket, ushort> _inbound = new();
    private volatile bool _disposed;

    private XenInterdomainLink(string directory, XenDomain domain, GrantTable grants, Action<string>? log, Socket listener)
    {
        _directory = directory;
        _domain = domain;
        _self = domain.DomainId;
        _grants = grants;
        _log = log;
        _listener = listener;
    }

    /// <summary>This domain's socket under <paramref name="directory"/>.</summary>
    public static string SocketPath(string directory, ushort domain) =>
        Path.Combine(directory, domain.ToString(CultureInfo.InvariantCulture), SocketName);

    /// <summary>Listens for this domain's peers and attaches the link to <paramref name="domain"/>.</summary>
    public static XenInterdomainLink Start(string directory, XenDomain domain, GrantTable grants, Action<string>? log)
    {
        ArgumentNullException.ThrowIfNull(domain);
        string path = SocketPath(directory, domain.DomainId);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        UnixSocketFiles.PrepareForListening(path);
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            listener.Bind(new UnixDomainSocketEndPoint(path));
            UnixSocketFiles.RestrictToOwner(path);
            listener.Listen(16);
        }
        catch
        {
            listener.Dispose();
            throw;
        }

        var link = new XenInterdomainLink(directory, domain, grants, log, listener);
        new Thread(link.AcceptLoop) { IsBackground = true, Name = "xen-link-accept" }.Start();
        domain.AttachInterdomainLink(link);
        domain.AttachGrantMapLink(link);
        return link;
    }

    public int Bind(ushort remoteDomain, int remotePort, int localPort)
    {
        byte[]? reply = Call(remoteDomain, XenLinkMessageType.Bind, Ports(remotePort, localPort));
        return reply is { Length: 4 } ? BinaryPrimitives.ReadInt32LittleEndian(reply) is int errno and >= 0 and < 256 ? errno : XenErrno.EINVAL : XenErrno.ESRCH;
    }

    public void Send(ushort remoteDomain, int remotePort, int localPort) => Post(remoteDomain, XenLinkMessageType.Send, Ports(remotePort, localPort));

    public void Close(ushort remoteDomain, int remotePort, int localPort) => Post(remoteDomain, XenLinkMessageType.Close, Ports(remotePort, localPort));

    public short CopyFromGrant(ushort granter, uint reference, int offset, Span<byte> destination)
    {
        byte[]? reply = Call(granter, XenLinkMessageType.GrantRead, GrantHeader(reference, offset, destination.Length, 0));
        if (reply is null || reply.Length < 2)
        {
            return GrantStatus.BadDomain;
        }

        short status = BinaryPrimitives.ReadInt16LittleEndian(reply);
        if (status == GrantStatus.Okay)
        {
            if (reply.Length != 2 + destination.Length)
            {
                return GrantStatus.GeneralError;
            }

            reply.AsSpan(2).CopyTo(destination);
        }

        return status;
    }

    public short CopyToGrant(ushort granter, uint reference, int offset, ReadOnlySpan<byte> source)
    {
        byte[] request = GrantHeader(reference, offset, source.Length, source.Length);
        source.CopyTo(request.AsSpan(8));
        byte[]? reply = Call(granter, XenLinkMessageType.GrantWrite, request);
        return reply is { Length: 2 } ? BinaryPrimitives.ReadInt16LittleEndian(reply) : GrantStatus.BadDomain;
    }

    /// <summary>What this domain serves beyond event channels and grants: the shared XenStore, a driver domain's introductions (docs/xen.md, "Driver domains").</summary>
    internal IXenLinkService? Service { get; set; }

    /// <summary>A request to <paramref name="peer"/>; null when it is gone or silent.</summary>
    internal byte[]? Request(ushort peer, XenLinkMessageType type, byte[] payload) => Call(peer, type, payload);

    /// <summary>A one-way message to <paramref name="peer"/>; dropped when it is gone.</summary>
    internal void Notify(ushort peer, XenLinkMessageType type, byte[] payload) => Post(peer, type, payload);

    public short CopyToGrants(ushort granter, IReadOnlyList<(uint Reference, int Offset, byte[] Data)> copies)
    {
        ArgumentNullException.ThrowIfNull(copies);
        int size = 2 + copies.Sum(c => 8 + c.Data.Length);
        if (copies.Count > ushort.MaxValue || size > XenLinkMessage.MaxPayload)
        {
            return GrantStatus.BadCopyArg;
        }

        byte[] request = new byte[size];
        BinaryPrimitives.WriteUInt16LittleEndian(request, (ushort)copies.Count);
        int at = 2;
        foreach ((uint reference, int offset, byte[] data) in copies)
        {
            GrantHeader(reference, offset, data.Length, 0).CopyTo(request, at);
            data.CopyTo(request, at + 8);
            at += 8 + data.Length;
        }

        byte[]? reply = Call(granter, XenLinkMessageType.GrantWriteBatch, request);
        return reply is { Length: 2 } ? BinaryPrimitives.ReadInt16LittleEndian(reply) : GrantStatus.BadDomain;
    }

    /// <summary>Closes every connection (the peers unbind this domain's ports) and the socket.</summary>
    public void Dispose()
    {
        _disposed = true;
        ForgetMemoryFiles(null);
        _listener.Dispose();
        foreach (Lazy<Outbound?> outbound in _outbound.Values)
        {
            if (outbound.IsValueCreated)
            {
                outbound.Value?.Dispose();
            }
        }

        foreach (Socket socket in _inbound.Keys)
        {
            socket.Dispose();
        }

        try
        {
            File.Delete(SocketPath(_directory, _self));
        }
        catch (IOException)
        {
            // The runtime directory goes away with the domain anyway.
        }
    }

    private static byte[] Ports(int remotePort, int localPort)
    {
        byte[] payload = new byte[8];
        BinaryPrimitives.WriteInt32LittleEndian(payload, remotePort);
        BinaryPrimitives.WriteInt32LittleEndian(payload.AsSpan(4), localPort);
        return payload;
    }

    private static byte[] GrantHeader(uint reference, int offset, int length, int extra)
    {
        byte[] payload = new byte[8 + extra];
        BinaryPrimitives.WriteUInt32LittleEndian(payload, reference);
        BinaryPrimitives.WriteUInt16LittleEndian(payload.AsSpan(4), (ushort)offset);
        BinaryPrimitives.WriteUInt16LittleEndian(payload.AsSpan(6), (ushort)length);
        return payload;
    }

    private byte[]? Call(ushort peer, XenLinkMessageType type, byte[] payload) => Connection(peer)?.Call(type, payload);

    private void Post(ushort peer, XenLinkMessageType type, byte[] payload) => Connection(peer)?.Post(type, payload);

    /// <summary>The connection to <paramref name="peer"/>, made on first use; null when nobody runs that domain.</summary>
    private Outbound? Connection(ushort peer)
    {
        if (_disposed || peer == _self || peer == 0 || peer >= XenDomain.DomidSelf)
        {
            return null;
        }

        Lazy<Outbound?> lazy = _outbound.GetOrAdd(peer, p => new Lazy<Outbound?>(() => Connect(p)));
        Outbound? outbound = lazy.Value;
        if (outbound is null || outbound.Closed)
        {
            // Try again next time (the domain may be started later); a dead connection is forgotten.
            _outbound.TryRemove(new KeyValuePair<ushort, Lazy<Outbound?>>(peer, lazy));
            return null;
        }

        return outbound;
    }

    private Outbound? Connect(ushort peer)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(SocketPath(_directory, peer)));
            byte[] hello = new byte[2];
            BinaryPrimitives.WriteUInt16LittleEndian(hello, _self);
            XenLinkMessage.Write(socket, XenLinkMessageType.Hello, 0, hello);
        }
        catch (SocketException)
        {
            socket.Dispose();
            return null;
        }

        _domain.Counters.Increment("interdomain-connections");
        var outbound = new Outbound(socket, () => OnPeerGone(peer));
        new Thread(outbound.ReadReplies) { IsBackground = true, Name = $"xen-link-to-{peer}" }.Start();
        return outbound;
    }

    private void AcceptLoop()
    {
        while (!_disposed)
        {
            Socket socket;
            try
            {
                socket = _listener.Accept();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return;
            }

            new Thread(() => Serve(socket)) { IsBackground = true, Name = "xen-link-from-peer" }.Start();
        }
    }

    /// <summary>One peer's requests: the first message names it; each request is checked against this domain's state.</summary>
    private void Serve(Socket socket)
    {
        ushort peer = 0;
        try
        {
            XenLinkMessage? first = XenLinkMessage.Read(socket);
            if (first is { Type: XenLinkMessageType.MemoryFile } request)
            {
                ServeMemoryFile(socket, request);
                return;
            }

            if (first is not { Type: XenLinkMessageType.Hello, Payload.Length: 2 } hello
                || BinaryPrimitives.ReadUInt16LittleEndian(hello.Payload) is var named && (named == 0 || named == _self || named >= XenDomain.DomidSelf))
            {
                return;
            }

            peer = named;
            _inbound[socket] = peer;
            while (XenLinkMessage.Read(socket) is { } message)
            {
                byte[]? reply = Handle(peer, message);
                if (reply is not null)
                {
                    XenLinkMessage.Write(socket, XenLinkMessageType.Reply, message.Id, reply);
                }
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // The peer went away mid-message.
        }
        finally
        {
            _inbound.TryRemove(socket, out _);
            socket.Dispose();
            if (peer != 0)
            {
                OnPeerGone(peer);
            }
        }
    }

    private byte[]? Handle(ushort peer, XenLinkMessage message)
    {
        ReadOnlySpan<byte> payload = message.Payload;
        switch (message.Type)
        {
            case XenLinkMessageType.Bind when payload.Length == 8:
            {
                int error = _domain.AcceptInterdomainBind(peer, BinaryPrimitives.ReadUInt32LittleEndian(payload), BinaryPrimitives.ReadInt32LittleEndian(payload[4..]));
                byte[] reply = new byte[4];
                BinaryPrimitives.WriteInt32LittleEndian(reply, error);
                return reply;
            }

            case XenLinkMessageType.Send when payload.Length == 8:
                _domain.DeliverInterdomain(peer, BinaryPrimitives.ReadUInt32LittleEndian(payload), BinaryPrimitives.ReadInt32LittleEndian(payload[4..]));
                return null;

            case XenLinkMessageType.Close when payload.Length == 8:
                _domain.PeerClosed(peer, BinaryPrimitives.ReadUInt32LittleEndian(payload), BinaryPrimitives.ReadInt32LittleEndian(payload[4..]));
                return null;

            case XenLinkMessageType.GrantRead when payload.Length == 8:
            {
                (uint reference, int offset, int length) = ParseGrant(payload);
                if (length > 4096)
                {
                    return Status(GrantStatus.BadCopyArg);
                }

                byte[] reply = new byte[2 + length];
                short status = _grants.TryCopyFrom(peer, reference, offset, reply.AsSpan(2));
                _domain.Counters.Increment("interdomain-grant-reads");
                return status == GrantStatus.Okay ? reply : Status(status);
            }

            case XenLinkMessageType.GrantWrite when payload.Length >= 8:
            {
                (uint reference, int offset, int length) = ParseGrant(payload);
                if (length != payload.Length - 8)
                {
                    return Status(GrantStatus.BadCopyArg);
                }

                _domain.Counters.Increment("interdomain-grant-writes");
                return Status(_grants.TryCopyTo(peer, reference, offset, payload[8..]));
            }

            case XenLinkMessageType.GrantMap when payload.Length == 5:
                return HandleGrantMap(peer, payload);

            case XenLinkMessageType.GrantUnmap when payload.Length == 8:
                _domain.ReleaseGrantMap(peer, BinaryPrimitives.ReadUInt64LittleEndian(payload));
                return null;

            case XenLinkMessageType.GrantWriteBatch when payload.Length >= 2:
                return Status(WriteBatch(peer, payload));

            case XenLinkMessageType.XenStore or XenLinkMessageType.XenStoreWatchEvent or XenLinkMessageType.Introduce or XenLinkMessageType.XenStoreSeedVbd when Service is { } service:
                return service.Handle(peer, message.Type, payload);

            default:
                // A request of the wrong shape: answered with a failure so the caller never waits for it.
                _domain.Counters.Increment("interdomain-malformed");
                return message.Type is XenLinkMessageType.Send or XenLinkMessageType.Close or XenLinkMessageType.GrantUnmap or XenLinkMessageType.XenStoreWatchEvent or XenLinkMessageType.Introduce
                    ? null
                    : Status(GrantStatus.GeneralError);
        }
    }

    /// <summary>A peer's batch of grant writes: checked whole for shape first, then done in order until one fails.</summary>
    private short WriteBatch(ushort peer, ReadOnlySpan<byte> payload)
    {
        int count = BinaryPrimitives.ReadUInt16LittleEndian(payload);
        var copies = new List<(uint Reference, int Offset, int Start, int Length)>(count);
        int at = 2;
        for (int i = 0; i < count; i++)
        {
            if (payload.Length - at < 8)
            {
                return GrantStatus.BadCopyArg;
            }

            (uint reference, int offset, int length) = ParseGrant(payload[at..]);
            if (payload.Length - at - 8 < length)
            {
                return GrantStatus.BadCopyArg;
            }

            copies.Add((reference, offset, at + 8, length));
            at += 8 + length;
        }

        if (at != payload.Length)
        {
            return GrantStatus.BadCopyArg;
        }

        foreach ((uint reference, int offset, int start, int length) in copies)
        {
            _domain.Counters.Increment("interdomain-grant-writes");
            short status = _grants.TryCopyTo(peer, reference, offset, payload.Slice(start, length));
            if (status != GrantStatus.Okay)
            {
                return status;
            }
        }

        return GrantStatus.Okay;
    }

    private static (uint Reference, int Offset, int Length) ParseGrant(ReadOnlySpan<byte> payload) =>
        (BinaryPrimitives.ReadUInt32LittleEndian(payload), BinaryPrimitives.ReadUInt16LittleEndian(payload[4..]), BinaryPrimitives.ReadUInt16LittleEndian(payload[6..]));

    private static byte[] Status(short status)
    {
        byte[] reply = new byte[2];
        BinaryPrimitives.WriteInt16LittleEndian(reply, status);
        return reply;
    }

    private void OnPeerGone(ushort peer)
    {
        if (_disposed)
        {
            return;
        }

        if (_outbound.TryRemove(peer, out Lazy<Outbound?>? lazy) && lazy.IsValueCreated)
        {
            lazy.Value?.Dispose();
        }

        // Both connections of a pair end when a peer dies: the second finds nothing left to unbind.
        ForgetMemoryFiles(peer);
        int released = _domain.ReleaseGrantMaps(peer);
        if (released > 0)
        {
            _log?.Invoke($"xen: domain {peer} is gone: {released} map(s) of this domain's grants released");
        }

        Service?.PeerGone(peer);
        int unbound = _domain.PeerGone(peer);
        if (unbound > 0)
        {
            _log?.Invoke($"xen: domain {peer} is gone: {unbound} event channel(s) to it unbound");
        }
    }

    /// <summary>This domain's connection to one peer: requests with ids, replies matched by a reader thread.</summary>
    private sealed class Outbound(Socket socket, Action gone) : IDisposable
    {
        private readonly object _writeLock = new();
        private readonly ConcurrentDictionary<uint, TaskCompletionSource<byte[]?>> _pending = new();
        private uint _nextId;
        private volatile bool _closed;

        public bool Closed => _closed;

        public byte[]? Call(XenLinkMessageType type, byte[] payload)
        {
            uint id = Interlocked.Increment(ref _nextId);
            var reply = new TaskCompletionSource<byte[]?>(TaskCreationOptions.RunContinuationsAsynchronously);
            _pending[id] = reply;
            try
            {
                if (!TryWrite(type, id, payload))
                {
                    return null;
                }

                // Checked again after registering: a reader that ended just before must not leave us waiting.
                if (_closed)
                {
                    reply.TrySetResult(null);
                }

                return reply.Task.Wait(CallTimeout) ? reply.Task.Result : null;
            }
            finally
            {
                _pending.TryRemove(id, out _);
            }
        }

        public void Post(XenLinkMessageType type, byte[] payload) => TryWrite(type, 0, payload);

        public void ReadReplies()
        {
            while (XenLinkMessage.Read(socket) is { Type: XenLinkMessageType.Reply } message)
            {
                if (_pending.TryGetValue(message.Id, out TaskCompletionSource<byte[]?>? waiter))
                {
                    waiter.TrySetResult(message.Payload);
                }
            }

            Close();
            gone();
        }

        public void Dispose() => Close();

        private bool TryWrite(XenLinkMessageType type, uint id, byte[] payload)
        {
            if (_closed)
            {
                return false;
            }

            try
            {
                lock (_writeLock)
                {
                    XenLinkMessage.Write(socket, type, id, payload);
                }

                return true;
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                Close();
                return false;
            }
        }

        private void Close()
        {
            _closed = true;
            socket.Dispose();
            foreach (TaskCompletionSource<byte[]?> waiter in _pending.Values)
            {
                waiter.TrySetResult(null);
            }
        }
    }
}
