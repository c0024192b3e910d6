using System.Buffers.Binary;
using System.Net.Sockets;
using SharpVisor.Interop;
using SharpVisor.Memory;

namespace SharpVisor.Devices.Virtio.Vsock;

/// <summary>
/// virtio-vsock (virtio 1.x §5.10), stream sockets only, with Firecracker's host convention:
/// a guest connection to host port P goes to the Unix socket "<c>uds_path</c>_P"; a host program
/// connects to <c>uds_path</c>, writes "CONNECT P\n" and, once the guest accepted, reads
/// "OK LOCALPORT\n" before the stream. All work runs on the device worker under the device
/// lock: the guest's queues and the host sockets (one epoll instance, edge-triggered, is the
/// worker's poll source). Against a hostile guest: every packet's addresses, type and length
/// are checked, data beyond the credit we advertised resets the connection, connections and
/// queued control packets are capped, and nothing the guest sends can block the worker.
/// </summary>
public sealed class VirtioVsockDevice : VirtioDevice
{
    public const ulong HostCid = 2;
    public const int ReceiveQueue = 0;
    public const int TransmitQueue = 1;
    public const int EventQueue = 2;

    /// <summary>The credit (buf_alloc) each connection advertises: bytes we hold for a slow host reader.</summary>
    public const uint ConnectionBufferSize = 256 * 1024;

    /// <summary>The largest payload one packet may carry (Linux's VIRTIO_VSOCK_MAX_PKT_BUF_SIZE).</summary>
    public const int MaxPayload = 64 * 1024;

    public const int MaxConnections = 1024;

    /// <summary>Header-only packets held while the guest posts no receive buffers; beyond this they are dropped.</summary>
    public const int MaxPendingControl = 2 * MaxConnections;

    /// <summary>Host-side ports of host-initiated connections count up from here, as Firecracker's.</summary>
    public const uint FirstLocalPort = 1u << 30;

    private const ulong ListenerToken = 0;
    private const int ConfigLength = 8;
    private const int EventBatch = 64;

    private readonly ulong _guestCid;
    private readonly Socket _listener;
    private readonly Epoll _epoll = new();
    private readonly Dictionary<ulong, VsockConnection> _byToken = new();
    private readonly Dictionary<(uint Local, uint Peer), VsockConnection> _byPorts = new();
    private readonly Queue<VsockControlPacket> _control = new();
    private readonly byte[] _payload = new byte[MaxPayload];
    private readonly byte[] _header = new byte[VsockPacketHeader.Size];
    private ulong _nextToken = 1;
    private uint _nextLocalPort = FirstLocalPort;
    private int _rxCursor;

    /// <param name="guestCid">The guest's context id (3 and up; 0-2 are reserved).</param>
    /// <param name="udsPath">The Unix socket host programs connect to; "<paramref name="udsPath"/>_PORT" are the ones guest connections go to.</param>
    public VirtioVsockDevice(GuestMemory memory, ulong guestCid, string udsPath, ushort queueSize = 256)
        : base(VirtioDeviceType.Socket, memory, 3, queueSize, 0)
    {
        if (guestCid is < 3 or > uint.MaxValue - 1)
        {
            throw new ArgumentOutOfRangeException(nameof(guestCid), $"guest CID {guestCid} is reserved or out of range (3-{uint.MaxValue - 1})");
        }

        _guestCid = guestCid;
        UdsPath = udsPath;
        _listener = Listen(udsPath);
        _epoll.Add((int)_listener.Handle, LibC.EPOLLIN | LibC.EPOLLET, ListenerToken);
    }

    public ulong GuestCid => _guestCid;

    public string UdsPath { get; }

    /// <summary>Open connections (any state).</summary>
    public int ConnectionCount
    {
        get
        {
            lock (Lock)
            {
                return _byToken.Count;
            }
        }
    }

    /// <summary>Guest packets dropped as malformed or misaddressed.</summary>
    public long DroppedPackets { get; private set; }

    /// <summary>Connections reset because the guest sent more than the credit it was given.</summary>
    public long CreditViolations { get; private set; }

    public override int ConfigSize => ConfigLength;

    public override void ReadConfig(int offset, Span<byte> data)
    {
        Span<byte> config = stackalloc byte[ConfigLength];
        BinaryPrimitives.WriteUInt64LittleEndian(config, _guestCid);
        config.Slice(offset, data.Length).CopyTo(data);
    }

    public override void Dispose()
    {
        base.Dispose();
        lock (Lock)
        {
            CloseAll();
        }

        _listener.Dispose();
        _epoll.Dispose();
        TryDeleteSocketFile(UdsPath);
    }

    protected override IEnumerable<(int Fd, Func<bool> Wanted, Action Ready)> PollSources() =>
        [(_epoll.Fd, () => IsActive, () => ServiceBackend(OnHostEvents))];

    protected override void OnReset()
    {
        CloseAll();
        _control.Clear();
    }

    protected override void ProcessQueue(Virtqueue queue)
    {
        if (queue.Index == TransmitQueue)
        {
            DrainQueue(queue, Transmit);
            PumpReceive();
        }
        else if (queue.Index == ReceiveQueue)
        {
            PumpReceive();
        }

        // The event queue only carries transport resets (after a migration): its buffers stay posted.
    }

    private static Socket Listen(string path)
    {
        // A socket left by an earlier VMM is replaced; any other file makes the bind fail.
        TryDeleteSocketFile(path);

        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Bind(new UnixDomainSocketEndPoint(path));
            socket.Listen(128);
            socket.Blocking = false;
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static void TryDeleteSocketFile(string path)
    {
        try
        {
            if (IsSocket(path))
            {
                File.Delete(path);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Left behind; the next bind reports it.
        }
    }

    private static unsafe bool IsSocket(string path)
    {
        FileStat stat;
        return LibC.Stat(path, &stat) == 0 && (stat.Mode & 0xF000) == 0xC000;
    }

    /// <summary>The host sockets' events: accept, read CONNECT lines, flush, then fill receive buffers.</summary>
    private void OnHostEvents()
    {
        Span<EpollEvent> events = stackalloc EpollEvent[EventBatch];
        int n;
        do
        {
            n = _epoll.Wait(events, 0);
            for (int i = 0; i < n; i++)
            {
                if (events[i].Data == ListenerToken)
                {
                    AcceptAll();
                    continue;
                }

                if (!_byToken.TryGetValue(events[i].Data, out VsockConnection? c))
                {
                    continue;
                }

                uint e = events[i].Events;
                if ((e & (LibC.EPOLLIN | LibC.EPOLLHUP | LibC.EPOLLERR | LibC.EPOLLRDHUP)) != 0)
                {
                    c.Readable = true;
                }

                if ((e & (LibC.EPOLLOUT | LibC.EPOLLHUP | LibC.EPOLLERR)) != 0)
                {
                    c.Writable = true;
                    Flush(c);
                }

                if (c.State == VsockConnectionState.AwaitingConnectLine && c.Readable && _byToken.ContainsKey(c.Token))
                {
                    ReadConnectLine(c);
                }
            }
        }
        while (n == EventBatch);

        PumpReceive();
    }

    private void AcceptAll()
    {
        while (true)
        {
            Socket accepted;
            try
            {
                accepted = _listener.Accept();
            }
            catch (SocketException)
            {
                return;
            }

            if (_byToken.Count >= MaxConnections)
            {
                Log?.Write($"{Name}: host connection refused: {MaxConnections} connections are open");
                accepted.Dispose();
                continue;
            }

            accepted.Blocking = false;
            var c = new VsockConnection(_nextToken++, accepted, AllocateLocalPort(), 0, VsockConnectionState.AwaitingConnectLine);
            Register(c);
            ReadConnectLine(c);
        }
    }

    private void ReadConnectLine(VsockConnection c)
    {
        uint? port;
        bool wouldBlock;
        try
        {
            port = c.ReadConnectLine(out wouldBlock);
        }
        catch (FormatException e)
        {
            Log?.Write($"{Name}: host connection closed: {e.Message}");
            Remove(c);
            return;
        }

        if (wouldBlock)
        {
            c.Readable = false;
        }

        if (port is not { } p)
        {
            return;
        }

        c.PeerPort = p;
        c.State = VsockConnectionState.AwaitingResponse;
        _byPorts[(c.LocalPort, p)] = c;
        QueueControl(new VsockControlPacket(c.LocalPort, p, VsockOp.Request, 0, c));
    }

    /// <summary>One packet the guest sent; the returned length is 0 (the device writes nothing into tx buffers).</summary>
    private uint Transmit(DescriptorChain chain)
    {
        if (chain.ReadableLength < VsockPacketHeader.Size)
        {
            Drop($"a transmit buffer of {chain.ReadableLength} bytes is shorter than the packet header");
            return 0;
        }

        chain.CopyFromReadable(0, _header);
        VsockPacketHeader h = VsockPacketHeader.Read(_header);
        if (h.SourceCid != _guestCid || h.DestinationCid != HostCid)
        {
            Drop($"packet from CID {h.SourceCid} to CID {h.DestinationCid} (the guest is {_guestCid}, the host {HostCid})");
            return 0;
        }

        if (h.Length > MaxPayload || h.Length > chain.ReadableLength - VsockPacketHeader.Size)
        {
            Drop($"packet length {h.Length} exceeds its buffer ({chain.ReadableLength - VsockPacketHeader.Size} bytes) or {MaxPayload}");
            return 0;
        }

        if (h.Type != VsockPacketHeader.TypeStream)
        {
            ResetUnknown(h);
            return 0;
        }

        _byPorts.TryGetValue((h.DestinationPort, h.SourcePort), out VsockConnection? c);
        if (h.Op == VsockOp.Request)
        {
            if (c is not null)
            {
                Reset(c);
                return 0;
            }

            ConnectToHost(h);
            return 0;
        }

        if (c is null)
        {
            ResetUnknown(h);
            return 0;
        }

        c.PeerBufferAllocation = h.BufferAllocation;
        c.PeerForwardCount = h.ForwardCount;
        switch (h.Op)
        {
            case VsockOp.Response:
                if (c.State != VsockConnectionState.AwaitingResponse)
                {
                    Reset(c);
                    break;
                }

                c.State = VsockConnectionState.Established;
                c.AddPreamble(System.Text.Encoding.ASCII.GetBytes($"OK {c.LocalPort}\n"));
                Flush(c);
                break;
            case VsockOp.Reset:
                Remove(c);
                break;
            case VsockOp.Shutdown:
                c.PeerShutdown |= h.Flags & VsockPacketHeader.ShutdownBoth;
                if (c.PeerShutdown == VsockPacketHeader.ShutdownBoth)
                {
                    c.CloseWhenFlushed = true;
                }

                Flush(c);
                break;
            case VsockOp.ReadWrite:
                Receive(c, chain, (int)h.Length);
                break;
            case VsockOp.CreditUpdate:
                break;
            case VsockOp.CreditRequest:
                QueueCreditUpdate(c);
                break;
            default:
                Reset(c);
                break;
        }

        return 0;
    }

    /// <summary>Guest data for the host socket: straight through when it takes it, else into the bounded buffer.</summary>
    private void Receive(VsockConnection c, DescriptorChain chain, int length)
    {
        if (c.State != VsockConnectionState.Established || (c.PeerShutdown & VsockPacketHeader.ShutdownSend) != 0)
        {
            Reset(c);
            return;
        }

        if (length == 0)
        {
            return;
        }

        if (c.PendingBytes + length > ConnectionBufferSize)
        {
            // The guest sent beyond the buf_alloc we advertised: it does not follow the protocol.
            CreditViolations++;
            Log?.Write($"{Name}: guest port {c.PeerPort} sent {length} bytes with {ConnectionBufferSize - c.PendingBytes} bytes of credit left: connection reset");
            Reset(c);
            return;
        }

        Span<byte> data = _payload.AsSpan(0, length);
        chain.CopyFromReadable(VsockPacketHeader.Size, data);
        c.ReceivedCount += (uint)length;
        IoCounters.AddWrite(length);
        if (c.PendingBytes == 0 && c.Writable)
        {
            int sent = c.Socket.Send(data, SocketFlags.None, out SocketError error);
            if (error == SocketError.WouldBlock)
            {
                c.Writable = false;
                sent = 0;
            }
            else if (error != SocketError.Success)
            {
                Reset(c);
                return;
            }

            c.ForwardCount += (uint)sent;
            data = data[sent..];
        }

        c.AddPending(data);
        MaybeQueueCreditUpdate(c);
    }

    private void Flush(VsockConnection c)
    {
        if (c.PendingBytes > 0 && c.Writable)
        {
            int sent = c.FlushPending();
            if (sent < 0)
            {
                Reset(c);
                return;
            }

            c.ForwardCount += (uint)c.TakeForwarded(sent);
        }

        if (c.PendingBytes > 0)
        {
            return;
        }

        if (c.CloseWhenFlushed)
        {
            Reset(c);
            return;
        }

        if ((c.PeerShutdown & VsockPacketHeader.ShutdownSend) != 0 && !c.HostWriteShut)
        {
            c.HostWriteShut = true;
            try
            {
                c.Socket.Shutdown(SocketShutdown.Send);
            }
            catch (SocketException)
            {
                // The host side is already gone; its read side reports it.
            }
        }

        MaybeQueueCreditUpdate(c);
    }

    /// <summary>
    /// Tells the guest about forwarded bytes once the space it believes it has fell below half
    /// of buf_alloc, so a sender never waits on credit we already freed.
    /// </summary>
    private void MaybeQueueCreditUpdate(VsockConnection c)
    {
        if (c.State != VsockConnectionState.Established || c.ForwardCount == c.LastForwardCountSent)
        {
            return;
        }

        uint believedFree = ConnectionBufferSize - Math.Min(ConnectionBufferSize, c.ReceivedCount - c.LastForwardCountSent);
        if (believedFree < ConnectionBufferSize / 2)
        {
            QueueCreditUpdate(c);
        }
    }

    private void QueueCreditUpdate(VsockConnection c)
    {
        if (!c.CreditUpdateQueued)
        {
            c.CreditUpdateQueued = true;
            QueueControl(new VsockControlPacket(c.LocalPort, c.PeerPort, VsockOp.CreditUpdate, 0, c));
        }
    }

    /// <summary>A guest REQUEST to host port P: connect to uds_path_P without blocking, answer RESPONSE or RST.</summary>
    private void ConnectToHost(VsockPacketHeader h)
    {
        if (_byToken.Count >= MaxConnections)
        {
            ResetUnknown(h);
            return;
        }

        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified) { Blocking = false };
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint($"{UdsPath}_{h.DestinationPort}"));
        }
        catch (Exception e) when (e is SocketException or ArgumentException)
        {
            // Nobody listens there, or its backlog is full: the guest sees a refused connection.
            socket.Dispose();
            ResetUnknown(h);
            return;
        }

        var c = new VsockConnection(_nextToken++, socket, h.DestinationPort, h.SourcePort, VsockConnectionState.Established)
        {
            PeerBufferAllocation = h.BufferAllocation,
            PeerForwardCount = h.ForwardCount,
        };
        Register(c);
        _byPorts[(c.LocalPort, c.PeerPort)] = c;
        QueueControl(new VsockControlPacket(c.LocalPort, c.PeerPort, VsockOp.Response, 0, c));
    }

    /// <summary>Fills the guest's receive buffers: control packets first, then data round-robin over connections with credit.</summary>
    private void PumpReceive()
    {
        Virtqueue queue = Queues[ReceiveQueue];
        if (!queue.Enabled)
        {
            return;
        }

        while (true)
        {
            if (_control.Count > 0)
            {
                if (!queue.TryPop(out DescriptorChain chain))
                {
                    break;
                }

                VsockControlPacket p = _control.Dequeue();
                if (p.Connection is { } pc)
                {
                    pc.CreditUpdateQueued = p.Op == VsockOp.CreditUpdate ? false : pc.CreditUpdateQueued;
                }

                queue.PushUsed(chain.Head, WritePacket(chain, p.LocalPort, p.PeerPort, p.Op, p.Flags, p.Connection, ReadOnlySpan<byte>.Empty));
                continue;
            }

            VsockConnection? c = NextSender();
            if (c is null)
            {
                break;
            }

            if (!queue.TryPop(out DescriptorChain rx))
            {
                break;
            }

            if (rx.WritableLength <= VsockPacketHeader.Size)
            {
                queue.UndoPop(1);
                Fail($"a receive buffer of {rx.WritableLength} bytes has no room for data after the header");
                return;
            }

            int room = (int)Math.Min(Math.Min(rx.WritableLength - VsockPacketHeader.Size, (ulong)MaxPayload), c.PeerCredit);
            int read = c.Socket.Receive(_payload.AsSpan(0, room), SocketFlags.None, out SocketError error);
            if (error == SocketError.WouldBlock)
            {
                c.Readable = false;
                queue.UndoPop(1);
                continue;
            }

            if (error != SocketError.Success)
            {
                queue.UndoPop(1);
                Reset(c);
                continue;
            }

            if (read == 0)
            {
                // The host program will send no more: the guest reads end of file.
                queue.UndoPop(1);
                c.HostEof = true;
                c.Readable = false;
                QueueControl(new VsockControlPacket(c.LocalPort, c.PeerPort, VsockOp.Shutdown, VsockPacketHeader.ShutdownSend, c));
                continue;
            }

            queue.PushUsed(rx.Head, WritePacket(rx, c.LocalPort, c.PeerPort, VsockOp.ReadWrite, 0, c, _payload.AsSpan(0, read)));
            c.SentCount += (uint)read;
            IoCounters.AddRead(read);
        }

        SignalIfNeeded(queue);
    }

    private VsockConnection? NextSender()
    {
        if (_byToken.Count == 0)
        {
            return null;
        }

        // Round-robin from where the last search stopped, so one busy connection cannot starve the others.
        VsockConnection[] all = _byToken.Values.ToArray();
        for (int i = 0; i < all.Length; i++)
        {
            VsockConnection c = all[(_rxCursor + i) % all.Length];
            if (c.State == VsockConnectionState.Established && c.Readable && !c.HostEof && c.PeerCredit > 0 &&
                (c.PeerShutdown & VsockPacketHeader.ShutdownReceive) == 0)
            {
                _rxCursor = (_rxCursor + i + 1) % all.Length;
                return c;
            }
        }

        return null;
    }

    private uint WritePacket(DescriptorChain chain, uint localPort, uint peerPort, VsockOp op, uint flags, VsockConnection? c, ReadOnlySpan<byte> data)
    {
        if (chain.WritableLength < (ulong)(VsockPacketHeader.Size + data.Length))
        {
            Fail($"a receive buffer of {chain.WritableLength} bytes cannot hold a {VsockPacketHeader.Size}-byte header");
            return 0;
        }

        if (c is not null)
        {
            c.LastForwardCountSent = c.ForwardCount;
        }

        var h = new VsockPacketHeader(HostCid, _guestCid, localPort, peerPort, (uint)data.Length, VsockPacketHeader.TypeStream, op, flags,
            ConnectionBufferSize, c?.ForwardCount ?? 0);
        h.Write(_header);
        chain.CopyToWritable(0, _header);
        if (!data.IsEmpty)
        {
            chain.CopyToWritable(VsockPacketHeader.Size, data);
        }

        return (uint)(VsockPacketHeader.Size + data.Length);
    }

    private void QueueControl(VsockControlPacket packet)
    {
        if (_control.Count >= MaxPendingControl)
        {
            // The guest posts no receive buffers yet keeps asking: it loses the answer, the host its memory not.
            DroppedPackets++;
            Log?.Write($"{Name}: {MaxPendingControl} control packets wait for receive buffers; {packet.Op} dropped");
            return;
        }

        _control.Enqueue(packet);
    }

    private void ResetUnknown(VsockPacketHeader h)
    {
        if (h.Op != VsockOp.Reset)
        {
            QueueControl(new VsockControlPacket(h.DestinationPort, h.SourcePort, VsockOp.Reset, 0, null));
        }
    }

    /// <summary>Sends RST for <paramref name="c"/> and forgets it.</summary>
    private void Reset(VsockConnection c)
    {
        if (c.State != VsockConnectionState.AwaitingConnectLine)
        {
            QueueControl(new VsockControlPacket(c.LocalPort, c.PeerPort, VsockOp.Reset, 0, null));
        }

        Remove(c);
    }

    private void Register(VsockConnection c)
    {
        _byToken.Add(c.Token, c);
        _epoll.Add((int)c.Socket.Handle, LibC.EPOLLIN | LibC.EPOLLOUT | LibC.EPOLLRDHUP | LibC.EPOLLET, c.Token);
    }

    private void Remove(VsockConnection c)
    {
        if (!_byToken.Remove(c.Token))
        {
            return;
        }

        if (_byPorts.TryGetValue((c.LocalPort, c.PeerPort), out VsockConnection? same) && ReferenceEquals(same, c))
        {
            _byPorts.Remove((c.LocalPort, c.PeerPort));
        }

        _epoll.Remove((int)c.Socket.Handle);
        c.Dispose();
    }

    private void CloseAll()
    {
        foreach (VsockConnection c in _byToken.Values.ToArray())
        {
            Remove(c);
        }
    }

    private uint AllocateLocalPort()
    {
        while (true)
        {
            uint port = _nextLocalPort++;
            if (_nextLocalPort == 0)
            {
                _nextLocalPort = FirstLocalPort;
            }

            if (!_byToken.Values.Any(c => c.LocalPort == port))
            {
                return port;
            }
        }
    }

    private void Drop(string reason)
    {
        DroppedPackets++;
        Log?.Write($"{Name}: packet dropped: {reason}");
    }
}
