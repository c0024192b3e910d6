using System.Buffers.Binary;
using System.Collections.Concurrent;
using SharpVisor.Machine;

namespace SharpVisor.Emulator.Tests.Accelerator;

/// <summary>An MMIO device that answers every read with one value and records writes.</summary>
internal sealed class TestMmioDevice : IMmioDevice
{
    private readonly ulong _value;

    public TestMmioDevice(ulong value)
    {
        _value = value;
    }

    public ConcurrentQueue<(ulong Offset, byte[] Data)> Writes { get; } = new();

    public void Read(ulong offset, Span<byte> data)
    {
        Span<byte> bytes = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, _value);
        bytes[..data.Length].CopyTo(data);
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data) => Writes.Enqueue((offset, data.ToArray()));
}
