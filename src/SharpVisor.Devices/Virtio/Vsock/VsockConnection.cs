using System.Net.Sockets;

namespace SharpVisor.Devices.Virtio.Vsock;

/// <summary>
/// One stream between a guest port and a host Unix socket, with virtio-vsock's credit counters
/// (virtio 1.x §5.10.6.3): what the guest sent us and what we forwarded to the host socket
/// (rx/fwd), and what we sent the guest against the buffer space it advertised (tx, peer
/// buf_alloc/fwd_cnt). Bytes the host socket could not take yet wait in a bounded buffer of
/// <see cref="VirtioVsockDevice.ConnectionBufferSize"/> bytes — the credit we advertise.
/// Used only under the device lock.
/// </summary>
public sealed class VsockConnection : IDisposable
{
    public const int MaxConnectLineBytes = 32;

    private readonly Queue<byte[]> _pending = new();
    private int _pendingOffset;
    private byte[]? _line;
    private int _lineLength;
    private int _preambleLeft;

    public VsockConnection(ulong token, Socket socket, uint localPort, uint peerPort, VsockConnectionState state)
    {
        Token = token;
        Socket = socket;
        LocalPort = localPort;
        PeerPort = peerPort;
        State = state;
    }

    /// <summary>The epoll token naming this connection.</summary>
    public ulong Token { get; }

    public Socket Socket { get; }

    /// <summary>The host side's vsock port (CID 2).</summary>
    public uint LocalPort { get; }

    /// <summary>The guest's port (0 until a host-initiated connection has read its CONNECT line).</summary>
    public uint PeerPort { get; set; }

    public VsockConnectionState State { get; set; }

    /// <summary>The host socket may have bytes (edge-triggered: cleared only on EAGAIN).</summary>
    public bool Readable { get; set; } = true;

    /// <summary>The host socket may take bytes.</summary>
    public bool Writable { get; set; } = true;

    /// <summary>Bytes the guest sent on this connection (wrapping, as the protocol's counters).</summary>
    public uint ReceivedCount { get; set; }

    /// <summary>Bytes of those written to the host socket: our fwd_cnt.</summary>
    public uint ForwardCount { get; set; }

    /// <summary>The fwd_cnt the guest last saw from us.</summary>
    public uint LastForwardCountSent { get; set; }

    /// <summary>A CREDIT_UPDATE for this connection waits in the control queue.</summary>
    public bool CreditUpdateQueued { get; set; }

    /// <summary>Bytes we sent the guest: our tx_cnt.</summary>
    public uint SentCount { get; set; }

    public uint PeerBufferAllocation { get; set; }

    public uint PeerForwardCount { get; set; }

    /// <summary>VsockPacketHeader.Shutdown* flags the guest sent.</summary>
    public uint PeerShutdown { get; set; }

    /// <summary>The host socket reached end of file; the guest was told (SHUTDOWN send).</summary>
    public bool HostEof { get; set; }

    /// <summary>The guest asked to close: reset the connection once the pending bytes reached the host.</summary>
    public bool CloseWhenFlushed { get; set; }

    /// <summary>shutdown(SHUT_WR) was done on the host socket.</summary>
    public bool HostWriteShut { get; set; }

    public int PendingBytes { get; private set; }

    /// <summary>
    /// What the guest may still receive: its buf_alloc less what is in flight. A guest claiming
    /// to have forwarded more than we sent gets no more than its buf_alloc, never a wrapped credit.
    /// </summary>
    public uint PeerCredit
    {
        get
        {
            uint inFlight = SentCount - PeerForwardCount;
            return inFlight >= PeerBufferAllocation ? 0 : PeerBufferAllocation - inFlight;
        }
    }

    /// <summary>
    /// Queues bytes of our own ahead of the stream (the "OK PORT\n" answer): they reach the host
    /// socket like guest data but are not the guest's, so they never count in fwd_cnt.
    /// </summary>
    public void AddPreamble(ReadOnlySpan<byte> text)
    {
        AddPending(text);
        _preambleLeft += text.Length;
    }

    /// <summary>Of <paramref name="sent"/> flushed bytes, how many were the guest's (the rest was the preamble).</summary>
    public int TakeForwarded(int sent)
    {
        int preamble = Math.Min(sent, _preambleLeft);
        _preambleLeft -= preamble;
        return sent - preamble;
    }

    public void AddPending(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
        {
            return;
        }

        _pending.Enqueue(data.ToArray());
        PendingBytes += data.Length;
    }

    /// <summary>Writes pending bytes to the host socket until it would block; returns bytes written, -1 when the socket failed.</summary>
    public int FlushPending()
    {
        int total = 0;
        while (_pending.Count > 0)
        {
            byte[] head = _pending.Peek();
            int sent = Socket.Send(head.AsSpan(_pendingOffset), SocketFlags.None, out SocketError error);
            if (error == SocketError.WouldBlock)
            {
                Writable = false;
                break;
            }

            if (error != SocketError.Success)
            {
                return -1;
            }

            total += sent;
            PendingBytes -= sent;
            _pendingOffset += sent;
            if (_pendingOffset == head.Length)
            {
                _pending.Dequeue();
                _pendingOffset = 0;
            }
        }

        return total;
    }

    /// <summary>
    /// Reads the host's "CONNECT PORT\n" a byte at a time (what follows the line is stream data).
    /// Returns the port once the line is complete, null while more is needed; throws
    /// <see cref="FormatException"/> for a malformed or overlong line.
    /// </summary>
    public uint? ReadConnectLine(out bool wouldBlock)
    {
        wouldBlock = false;
        _line ??= new byte[MaxConnectLineBytes];
        Span<byte> one = stackalloc byte[1];
        while (true)
        {
            int n = Socket.Receive(one, SocketFlags.None, out SocketError error);
            if (error == SocketError.WouldBlock)
            {
                wouldBlock = true;
                return null;
            }

            if (error != SocketError.Success || n == 0)
            {
                throw new FormatException("the host closed the socket before its CONNECT line");
            }

            if (one[0] == (byte)'\n')
            {
                return ParseConnectLine(_line.AsSpan(0, _lineLength));
            }

            if (_lineLength == _line.Length)
            {
                throw new FormatException($"the CONNECT line is longer than {MaxConnectLineBytes} bytes");
            }

            _line[_lineLength++] = one[0];
        }
    }

    public void Dispose() => Socket.Dispose();

    private static uint ParseConnectLine(ReadOnlySpan<byte> line)
    {
        string text = System.Text.Encoding.ASCII.GetString(line).TrimEnd('\r');
        const string Prefix = "CONNECT ";
        if (!text.StartsWith(Prefix, StringComparison.Ordinal) ||
            !uint.TryParse(text.AsSpan(Prefix.Length), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out uint port))
        {
            throw new FormatException($"'{text}' is not 'CONNECT <port>'");
        }

        return port;
    }
}
