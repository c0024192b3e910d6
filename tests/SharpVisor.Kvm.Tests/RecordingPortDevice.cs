using System.Buffers.Binary;
using System.Collections.Concurrent;
using SharpVisor.Machine;

namespace SharpVisor.Kvm.Tests;

/// <summary>A port device that records every write and answers reads from a function.</summary>
internal sealed class RecordingPortDevice : IPortIoDevice
{
    private readonly Func<ushort, int, ulong> _read;

    public RecordingPortDevice(Func<ushort, int, ulong>? read = null)
    {
        _read = read ?? ((_, _) => 0);
    }

    public ConcurrentQueue<(ushort Offset, byte[] Data)> Writes { get; } = new();

    public event Action<ushort, byte[]>? Written;

    /// <summary>Every written byte in order, as text (for string output).</summary>
    public string Text => string.Concat(Writes.Select(w => System.Text.Encoding.ASCII.GetString(w.Data)));

    /// <summary>Written values as little-endian numbers.</summary>
    public ulong[] Values => Writes.Select(w => ToValue(w.Data)).ToArray();

    public void Read(ushort offset, Span<byte> data)
    {
        ulong value = _read(offset, data.Length);
        Span<byte> bytes = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, value);
        bytes[..data.Length].CopyTo(data);
    }

    public void Write(ushort offset, ReadOnlySpan<byte> data)
    {
        byte[] copy = data.ToArray();
        Writes.Enqueue((offset, copy));
        Written?.Invoke(offset, copy);
    }

    public static ulong ToValue(byte[] data)
    {
        Span<byte> bytes = stackalloc byte[8];
        data.CopyTo(bytes);
        return BinaryPrimitives.ReadUInt64LittleEndian(bytes);
    }
}
