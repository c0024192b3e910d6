using System.Buffers.Binary;

namespace SharpVisor.Boot.Tests;

/// <summary>
/// A small greedy LZ4 compressor for building payloads: every 4-byte sequence seen is remembered,
/// so repeats at every distance up to 64 KiB and overlapping runs (offset below the length) appear
/// as matches, which is what the decoder's copy paths must get right.
/// </summary>
internal static class Lz4TestEncoder
{
    private const int BlockInput = 8 << 20;

    /// <summary>The legacy frame Linux's build writes (`lz4 -l` plus the le32 uncompressed size).</summary>
    public static byte[] LegacyFrame(byte[] data)
    {
        var frame = new List<byte>();
        frame.AddRange(BitConverter.GetBytes(Lz4LegacyFrame.Magic));
        for (int start = 0; start < data.Length; start += BlockInput)
        {
            byte[] block = Block(data.AsSpan(start, Math.Min(BlockInput, data.Length - start)));
            frame.AddRange(BitConverter.GetBytes(block.Length));
            frame.AddRange(block);
        }

        frame.AddRange(BitConverter.GetBytes(data.Length));
        return frame.ToArray();
    }

    public static byte[] Block(ReadOnlySpan<byte> data)
    {
        var output = new List<byte>();
        var seen = new Dictionary<int, int>();
        int anchor = 0, i = 0;
        while (i + 4 <= data.Length)
        {
            int key = BinaryPrimitives.ReadInt32LittleEndian(data[i..]);
            if (seen.TryGetValue(key, out int j) && i - j <= ushort.MaxValue)
            {
                int length = 4;
                while (i + length < data.Length && data[j + length] == data[i + length])
                {
                    length++;
                }

                Sequence(output, data[anchor..i], i - j, length);
                for (int k = i; k < i + length && k + 4 <= data.Length; k++)
                {
                    seen[BinaryPrimitives.ReadInt32LittleEndian(data[k..])] = k;
                }

                i += length;
                anchor = i;
            }
            else
            {
                seen[key] = i++;
            }
        }

        Sequence(output, data[anchor..], 0, 0);
        return output.ToArray();
    }

    /// <summary>A sequence; <paramref name="length"/> 0 means the last one, literals only.</summary>
    private static void Sequence(List<byte> output, ReadOnlySpan<byte> literals, int offset, int length)
    {
        int matchCode = length == 0 ? 0 : length - 4;
        output.Add((byte)((Math.Min(literals.Length, 15) << 4) | Math.Min(matchCode, 15)));
        Length(output, literals.Length);
        output.AddRange(literals.ToArray());
        if (length == 0)
        {
            return;
        }

        output.Add((byte)offset);
        output.Add((byte)(offset >> 8));
        Length(output, matchCode);
    }

    private static void Length(List<byte> output, int value)
    {
        if (value < 15)
        {
            return;
        }

        for (value -= 15; value >= 255; value -= 255)
        {
            output.Add(255);
        }

        output.Add((byte)value);
    }
}
