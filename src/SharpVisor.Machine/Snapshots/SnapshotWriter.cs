using System.Buffers.Binary;
using System.Text;

namespace SharpVisor.Machine.Snapshots;

/// <summary>One section's payload: little-endian fixed-width values, length-prefixed byte strings.</summary>
public sealed class SnapshotWriter
{
    private readonly MemoryStream _stream = new();

    public void Write(byte value) => _stream.WriteByte(value);

    public void Write(bool value) => _stream.WriteByte(value ? (byte)1 : (byte)0);

    public void Write(ushort value)
    {
        Span<byte> b = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(b, value);
        _stream.Write(b);
    }

    public void Write(uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        _stream.Write(b);
    }

    public void Write(int value) => Write((uint)value);

    public void Write(ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, value);
        _stream.Write(b);
    }

    public void Write(long value) => Write((ulong)value);

    /// <summary>A byte string with its length.</summary>
    public void WriteBytes(ReadOnlySpan<byte> value)
    {
        Write(value.Length);
        _stream.Write(value);
    }

    public void Write(string value) => WriteBytes(Encoding.UTF8.GetBytes(value));

    public void Write(IReadOnlyList<ulong> values)
    {
        Write(values.Count);
        foreach (ulong v in values)
        {
            Write(v);
        }
    }

    public void Write(IReadOnlyList<uint> values)
    {
        Write(values.Count);
        foreach (uint v in values)
        {
            Write(v);
        }
    }

    public byte[] ToArray() => _stream.ToArray();
}
