using System.Buffers.Binary;
using System.Net.Sockets;

namespace SharpVisor.Host.Vmm;

/// <summary>
/// One message between two domains' VMMs on the inter-domain link: a 9-byte header
/// { uint32 payload length; uint8 type; uint32 id } and the payload. Requests carry an id the
/// reply repeats; one-way messages (send, close) carry 0.
/// </summary>
internal readonly record struct XenLinkMessage(XenLinkMessageType Type, uint Id, byte[] Payload)
{
    public const int HeaderSize = 9;

    /// <summary>The largest payload: a page of grant data and its header, or a XenStore request (an op, a path and a value).</summary>
    public const int MaxPayload = 1 + XenStoreLinkWire.MaxPath + 1 + XenStoreLinkWire.MaxValue;

    public static void Write(Socket socket, XenLinkMessageType type, uint id, ReadOnlySpan<byte> payload)
    {
        byte[] buffer = new byte[HeaderSize + payload.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(buffer, (uint)payload.Length);
        buffer[4] = (byte)type;
        BinaryPrimitives.WriteUInt32LittleEndian(buffer.AsSpan(5), id);
        payload.CopyTo(buffer.AsSpan(HeaderSize));
        int sent = 0;
        while (sent < buffer.Length)
        {
            sent += socket.Send(buffer, sent, buffer.Length - sent, SocketFlags.None);
        }
    }

    /// <summary>The next message, or null at the end of the stream or for a malformed one (the connection is then dropped).</summary>
    public static XenLinkMessage? Read(Socket socket)
    {
        byte[] header = new byte[HeaderSize];
        if (!ReadExactly(socket, header))
        {
            return null;
        }

        uint length = BinaryPrimitives.ReadUInt32LittleEndian(header);
        var type = (XenLinkMessageType)header[4];
        if (length > MaxPayload || !Enum.IsDefined(type))
        {
            return null;
        }

        byte[] payload = new byte[length];
        return ReadExactly(socket, payload) ? new XenLinkMessage(type, BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(5)), payload) : null;
    }

    private static bool ReadExactly(Socket socket, byte[] buffer)
    {
        int read = 0;
        while (read < buffer.Length)
        {
            int n;
            try
            {
                n = socket.Receive(buffer, read, buffer.Length - read, SocketFlags.None);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return false;
            }

            if (n == 0)
            {
                return false;
            }

            read += n;
        }

        return true;
    }
}
