using System.Buffers.Binary;
using System.Globalization;
using System.Net.Sockets;
using SharpVisor.Interop;
using SharpVisor.Xen;

namespace SharpVisor.Host.Vmm;

/// <summary>
/// Grant maps between domains (docs/xen.md, "Grant mapping"). The mapper asks the granter
/// (<see cref="XenLinkMessageType.GrantMap"/>); the granter checks the grant in its own table and
/// keeps it marked in use (<see cref="XenDomain.AcceptGrantMap"/>) and answers a token, a key for
/// the memory file behind the page and the page's offset in it. The first map of a file fetches
/// the file itself on a connection of its own (<see cref="XenLinkMessageType.MemoryFile"/>, the
/// descriptor passed with SCM_RIGHTS; read-only when the map is); the mapper keeps it per granter
/// and hands each map its own descriptor, which the domain closes once the page is mapped.
/// </summary>
public sealed partial class XenInterdomainLink : IXenGrantMapLink
{
    private readonly object _filesLock = new();
    private readonly Dictionary<(ushort Granter, ulong Key, bool ReadOnly), int> _files = new();

    public short MapGrant(ushort granter, uint reference, bool readOnly, out XenForeignPage page)
    {
        page = default;
        byte[] request = new byte[5];
        BinaryPrimitives.WriteUInt32LittleEndian(request, reference);
        request[4] = readOnly ? (byte)1 : (byte)0;
        byte[]? reply = Call(granter, XenLinkMessageType.GrantMap, request);
        if (reply is null || reply.Length < 2)
        {
            return GrantStatus.BadDomain;
        }

        short status = BinaryPrimitives.ReadInt16LittleEndian(reply);
        if (status != GrantStatus.Okay)
        {
            return status;
        }

        ulong token = reply.Length == 26 ? BinaryPrimitives.ReadUInt64LittleEndian(reply.AsSpan(2)) : 0;
        ulong key = reply.Length == 26 ? BinaryPrimitives.ReadUInt64LittleEndian(reply.AsSpan(10)) : 0;
        long offset = reply.Length == 26 ? BinaryPrimitives.ReadInt64LittleEndian(reply.AsSpan(18)) : -1;
        int fd = offset >= 0 && (offset & 0xFFF) == 0 ? MapDescriptor(granter, key, readOnly, token) : -1;
        if (fd < 0)
        {
            Post(granter, XenLinkMessageType.GrantUnmap, Token(token));
            _domain.Counters.Increment("interdomain-grant-map-files-refused");
            return GrantStatus.GeneralError;
        }

        page = new XenForeignPage(token, fd, offset);
        return GrantStatus.Okay;
    }

    public void Mapped(in XenForeignPage page)
    {
        if (page.MemFd >= 0)
        {
            LibC.Close(page.MemFd);
        }
    }

    public void UnmapGrant(ushort granter, ulong token) => Post(granter, XenLinkMessageType.GrantUnmap, Token(token));

    private static byte[] Token(ulong token)
    {
        byte[] payload = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(payload, token);
        return payload;
    }

    /// <summary>A descriptor of its own for one map: a new open of the granter's file (fetched once per granter, file and mode).</summary>
    private int MapDescriptor(ushort granter, ulong key, bool readOnly, ulong token)
    {
        lock (_filesLock)
        {
            if (!_files.TryGetValue((granter, key, readOnly), out int file))
            {
                file = FetchMemoryFile(granter, token);
                if (file < 0)
                {
                    return -1;
                }

                _files[(granter, key, readOnly)] = file;
            }

            return Reopen(file, readOnly);
        }
    }

    private static int Reopen(int fd, bool readOnly) =>
        LibC.Open(string.Create(CultureInfo.InvariantCulture, $"/proc/self/fd/{fd}"), (readOnly ? LibC.O_RDONLY : LibC.O_RDWR) | LibC.O_CLOEXEC);

    /// <summary>Asks the granter for the memory file behind the map <paramref name="token"/>, on a connection of its own; -1 when refused.</summary>
    private int FetchMemoryFile(ushort granter, ulong token)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(SocketPath(_directory, granter)));
            byte[] request = new byte[10];
            BinaryPrimitives.WriteUInt16LittleEndian(request, _self);
            BinaryPrimitives.WriteUInt64LittleEndian(request.AsSpan(2), token);
            XenLinkMessage.Write(socket, XenLinkMessageType.MemoryFile, 0, request);
            if (!socket.Poll(CallTimeout, SelectMode.SelectRead))
            {
                return -1;
            }

            byte[] reply = new byte[XenLinkMessage.HeaderSize + 2];
            nint received = LibC.ReceiveWithFileDescriptor((int)socket.Handle, reply, out int fd);
            if (received != reply.Length || reply[4] != (byte)XenLinkMessageType.Reply
                || BinaryPrimitives.ReadInt16LittleEndian(reply.AsSpan(XenLinkMessage.HeaderSize)) != GrantStatus.Okay)
            {
                if (fd >= 0)
                {
                    LibC.Close(fd);
                }

                return -1;
            }

            return fd;
        }
        catch (SocketException)
        {
            return -1;
        }
    }

    /// <summary>The granter's half of a map: the checks are the domain's; the answer names the page's file and offset.</summary>
    private byte[] HandleGrantMap(ushort peer, ReadOnlySpan<byte> payload)
    {
        uint reference = BinaryPrimitives.ReadUInt32LittleEndian(payload);
        short status = _domain.AcceptGrantMap(peer, reference, readOnly: payload[4] != 0, out XenForeignPage page);
        if (status != GrantStatus.Okay)
        {
            return Status(status);
        }

        byte[] reply = new byte[26];
        BinaryPrimitives.WriteInt16LittleEndian(reply, status);
        BinaryPrimitives.WriteUInt64LittleEndian(reply.AsSpan(2), page.Token);
        BinaryPrimitives.WriteUInt64LittleEndian(reply.AsSpan(10), (ulong)page.MemFd);
        BinaryPrimitives.WriteInt64LittleEndian(reply.AsSpan(18), page.FileOffset);
        return reply;
    }

    /// <summary>
    /// A peer's request for the memory file behind one of its maps: only for a map it holds now,
    /// read-only for a read-only map. Answered on this connection, which then ends.
    /// </summary>
    private void ServeMemoryFile(Socket socket, XenLinkMessage request)
    {
        short status = GrantStatus.GeneralError;
        int fd = -1;
        if (request.Payload.Length == 10)
        {
            ushort peer = BinaryPrimitives.ReadUInt16LittleEndian(request.Payload);
            ulong token = BinaryPrimitives.ReadUInt64LittleEndian(request.Payload.AsSpan(2));
            if (_domain.TryGetServedGrantMap(peer, token, out XenForeignPage page, out bool write))
            {
                fd = Reopen(page.MemFd, readOnly: !write);
                status = fd >= 0 ? GrantStatus.Okay : GrantStatus.GeneralError;
                _domain.Counters.Increment("interdomain-memory-files");
            }
        }

        byte[] reply = new byte[XenLinkMessage.HeaderSize + 2];
        BinaryPrimitives.WriteUInt32LittleEndian(reply, 2);
        reply[4] = (byte)XenLinkMessageType.Reply;
        BinaryPrimitives.WriteInt16LittleEndian(reply.AsSpan(XenLinkMessage.HeaderSize), status);
        try
        {
            if (fd >= 0)
            {
                LibC.SendWithFileDescriptor((int)socket.Handle, reply, fd);
            }
            else
            {
                socket.Send(reply);
            }
        }
        catch (SocketException)
        {
            // The peer went away: nothing was handed over.
        }
        finally
        {
            if (fd >= 0)
            {
                LibC.Close(fd);
            }
        }
    }

    /// <summary>Closes the memory files fetched from <paramref name="granter"/> (null: all). Pages already mapped stay: a mapping holds its file.</summary>
    private void ForgetMemoryFiles(ushort? granter)
    {
        lock (_filesLock)
        {
            foreach (var key in _files.Keys.Where(k => granter is null || k.Granter == granter).ToArray())
            {
                LibC.Close(_files[key]);
                _files.Remove(key);
            }
        }
    }
}
