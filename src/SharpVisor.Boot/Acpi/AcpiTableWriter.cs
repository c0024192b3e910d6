using System.Buffers.Binary;
using System.Text;

namespace SharpVisor.Boot.Acpi;

/// <summary>Builds one system description table: the 36-byte header, the body, and the checksum.</summary>
internal sealed class AcpiTableWriter
{
    public const int HeaderLength = 36;
    public const string OemId = "SHRPVS";
    public const string OemTableId = "SHARPVSR";
    public const string CreatorId = "SHVR";

    private readonly List<byte> _bytes = new();

    public AcpiTableWriter(string signature, byte revision)
    {
        Append(signature, 4);
        AppendU32(0); // length, patched in Finish
        _bytes.Add(revision);
        _bytes.Add(0); // checksum
        Append(OemId, 6);
        Append(OemTableId, 8);
        AppendU32(1); // OEM revision
        Append(CreatorId, 4);
        AppendU32(1); // creator revision
    }

    public int Length => _bytes.Count;

    public void AppendU8(byte value) => _bytes.Add(value);

    public void AppendU16(ushort value)
    {
        _bytes.Add((byte)value);
        _bytes.Add((byte)(value >> 8));
    }

    public void AppendU32(uint value)
    {
        for (int i = 0; i < 4; i++)
        {
            _bytes.Add((byte)(value >> (8 * i)));
        }
    }

    public void AppendU64(ulong value)
    {
        for (int i = 0; i < 8; i++)
        {
            _bytes.Add((byte)(value >> (8 * i)));
        }
    }

    public void AppendBytes(ReadOnlySpan<byte> bytes) => _bytes.AddRange(bytes.ToArray());

    /// <summary>A Generic Address Structure: space (0 memory, 1 I/O), bit width, offset, access size, address.</summary>
    public void AppendGas(byte space, byte bitWidth, byte accessSize, ulong address)
    {
        _bytes.AddRange([space, bitWidth, 0, accessSize]);
        AppendU64(address);
    }

    public void Append(string ascii, int width)
    {
        byte[] text = Encoding.ASCII.GetBytes(ascii.PadRight(width));
        _bytes.AddRange(text.AsSpan(0, width).ToArray());
    }

    public byte[] Finish()
    {
        byte[] table = _bytes.ToArray();
        BinaryPrimitives.WriteUInt32LittleEndian(table.AsSpan(4), (uint)table.Length);
        table[9] = Checksum(table);
        return table;
    }

    /// <summary>The byte that makes the sum of <paramref name="data"/> zero (the checksum byte counted as 0).</summary>
    public static byte Checksum(ReadOnlySpan<byte> data)
    {
        byte sum = 0;
        foreach (byte b in data)
        {
            sum += b;
        }

        return (byte)(0 - sum);
    }
}
