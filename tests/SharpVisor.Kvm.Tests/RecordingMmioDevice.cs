using System.Buffers.Binary;
using System.Collections.Concurrent;
using SharpVisor.Machine;

namespace SharpVisor.Kvm.Tests;

/// <summary>An MMIO device that records writes and answers reads from a function.</summary>
internal sealed class RecordingMmioDevice : IMmioDevice
{
    private readonly Func<ulong, int, ulong> _read;

    public RecordingMmioDevice(Func<ulong, int, ulong>? read = null)
    {
        _read = read ?? ((_, _) => 0);
    }

    public ConcurrentQueue<(ulong Offset, byte[] Data)> Writes { get; } = new();

    public ConcurrentQueue<(ulong Offset, int Length)> Reads { get; } = new();

    public void Read(ulong offset, Span<byte> data)
    {
        Reads.Enqueue((offset, data.Length));
        Span<byte> bytes = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, _read(offset, data.Length));
        bytes[..data.Length].CopyTo(data);
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data) => Writes.Enqueue((offset, data.ToArray()));
}
