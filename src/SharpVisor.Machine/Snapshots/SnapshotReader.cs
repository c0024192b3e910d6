using System.Buffers.Binary;
using System.Text;

namespace SharpVisor.Machine.Snapshots;

/// <summary>Reads a section written by <see cref="SnapshotWriter"/>; running past its end is a <see cref="SnapshotException"/>.</summary>
public sealed class SnapshotReader
{
    private readonly byte[] _data;
    private int _position;

    public SnapshotReader(string tag, byte[] data)
    {
        Tag = tag;
        _data = data;
    }

    /// <summary>The section being read (for error messages).</summary>
    public string Tag { get; }

    public int Remaining => _data.Length - _position;

    public byte ReadByte() => Take(1)[0];

    public bool ReadBoolean() => ReadByte() switch
    {
        0 => false,
        1 => true,
        var b => throw Invalid($"a boolean is {b}"),
    };

    public ushort ReadUInt16() => BinaryPrimitives.ReadUInt16LittleEndian(Take(2));

    public uint ReadUInt32() => BinaryPrimitives.ReadUInt32LittleEndian(Take(4));

    public int ReadInt32() => (int)ReadUInt32();

    public ulong ReadUInt64() => BinaryPrimitives.ReadUInt64LittleEndian(Take(8));

    public long ReadInt64() => (long)ReadUInt64();

    public byte[] ReadBytes()
    {
        int length = ReadInt32();
        if (length < 0 || length > Remaining)
        {
            throw Invalid($"a byte string of {length} bytes with {Remaining} left");
        }

        return Take(length).ToArray();
    }

    /// <summary>A byte string that must be exactly <paramref name="length"/> bytes long.</summary>
    public byte[] ReadBytes(int length)
    {
        byte[] value = ReadBytes();
        if (value.Length != length)
        {
            throw Invalid($"expected {length} bytes, found {value.Length}");
        }

        return value;
    }

    public string ReadString() => Encoding.UTF8.GetString(ReadBytes());

    public ulong[] ReadUInt64Array(int expectedCount)
    {
        int count = ReadInt32();
        if (count != expectedCount)
        {
            throw Invalid($"expected {expectedCount} values, found {count}");
        }

        var values = new ulong[count];
        for (int i = 0; i < count; i++)
        {
            values[i] = ReadUInt64();
        }

        return values;
    }

    public uint[] ReadUInt32Array(int expectedCount)
    {
        int count = ReadInt32();
        if (count != expectedCount)
        {
            throw Invalid($"expected {expectedCount} values, found {count}");
        }

        var values = new uint[count];
        for (int i = 0; i < count; i++)
        {
            values[i] = ReadUInt32();
        }

        return values;
    }

    /// <summary>Every byte must have been read: a longer section is from another layout.</summary>
    public void EnsureEnd()
    {
        if (Remaining != 0)
        {
            throw Invalid($"{Remaining} bytes left over");
        }
    }

    public SnapshotException Invalid(string what) => new($"snapshot section '{Tag}': {what}");

    private ReadOnlySpan<byte> Take(int count)
    {
        if (count > Remaining)
        {
            throw Invalid("truncated");
        }

        var span = new ReadOnlySpan<byte>(_data, _position, count);
        _position += count;
        return span;
    }
}
