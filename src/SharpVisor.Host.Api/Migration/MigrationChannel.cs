using System.Buffers.Binary;
using System.Text;

namespace SharpVisor.Host.Migration;

/// <summary>
/// The framing of the migration protocol over a byte stream (docs/migration.md): a frame is a
/// type byte, a u32 LE payload length (at most <see cref="MaxPayload"/>) and the payload. The
/// length is checked before anything is allocated: the peer is not trusted.
/// </summary>
public sealed class MigrationChannel
{
    public const int MaxPayload = 64 << 20;

    private readonly Stream _stream;
    private readonly byte[] _header = new byte[5];

    public MigrationChannel(Stream stream)
    {
        _stream = stream;
    }

    /// <summary>Bytes written so far (headers included).</summary>
    public long BytesSent { get; private set; }

    public void Send(MigrationFrameType type, ReadOnlySpan<byte> payload)
    {
        _header[0] = (byte)type;
        BinaryPrimitives.WriteInt32LittleEndian(_header.AsSpan(1), payload.Length);
        _stream.Write(_header);
        _stream.Write(payload);
        BytesSent += _header.Length + payload.Length;
    }

    public void Send(MigrationFrameType type, string text) => Send(type, Encoding.UTF8.GetBytes(text));

    public void Flush() => _stream.Flush();

    /// <summary>The next frame; <see cref="MigrationException"/> when the peer closed or sent garbage.</summary>
    public (MigrationFrameType Type, byte[] Payload) Receive()
    {
        ReadExactly(_header);
        int length = BinaryPrimitives.ReadInt32LittleEndian(_header.AsSpan(1));
        var type = (MigrationFrameType)_header[0];
        if (length < 0 || length > MaxPayload || !Enum.IsDefined(type))
        {
            throw new MigrationException($"the peer sent an invalid frame (type {_header[0]}, {length} bytes)");
        }

        byte[] payload = new byte[length];
        ReadExactly(payload);
        return (type, payload);
    }

    /// <summary>The next frame, which must be <paramref name="expected"/>; a Refuse becomes its reason.</summary>
    public byte[] Expect(MigrationFrameType expected)
    {
        (MigrationFrameType type, byte[] payload) = Receive();
        if (type == MigrationFrameType.Refuse)
        {
            throw new MigrationException($"the destination refused: {Encoding.UTF8.GetString(payload)}");
        }

        if (type != expected)
        {
            throw new MigrationException($"the peer sent {type} where {expected} was due");
        }

        return payload;
    }

    private void ReadExactly(Span<byte> buffer)
    {
        try
        {
            _stream.ReadExactly(buffer);
        }
        catch (EndOfStreamException e)
        {
            throw new MigrationException("the peer closed the connection mid-way", e);
        }
        catch (IOException e)
        {
            throw new MigrationException($"the connection failed: {e.Message}", e);
        }
    }
}
