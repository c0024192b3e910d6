using System.Buffers.Binary;
using System.Collections.Concurrent;
using SharpVisor.Machine;

namespace SharpVisor.Emulator.Tests.Accelerator;

/// <summary>A port device that records every write (and can signal on one); reads return 0.</summary>
internal sealed class TestPortDevice : IPortIoDevice
{
    public ConcurrentQueue<byte[]> Writes { get; } = new();

    public ManualResetEventSlim Written { get; } = new();

    /// <summary>Every written byte in order, as text.</summary>
    public string Text => string.Concat(Writes.Select(w => System.Text.Encoding.ASCII.GetString(w)));

    /// <summary>Written values as little-endian numbers.</summary>
    public ulong[] Values => Writes.Select(w =>
    {
        Span<byte> bytes = stackalloc byte[8];
        w.CopyTo(bytes);
        return BinaryPrimitives.ReadUInt64LittleEndian(bytes);
    }).ToArray();

    public void Read(ushort offset, Span<byte> data) => data.Clear();

    public void Write(ushort offset, ReadOnlySpan<byte> data)
    {
        Writes.Enqueue(data.ToArray());
        Written.Set();
    }
}
