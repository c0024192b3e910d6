using SharpVisor.Machine;

namespace SharpVisor.Bench.ExitLatency;

/// <summary>The loop port: counts writes and does nothing else, so the benchmark measures the exit path.</summary>
public sealed class CountingPort : IPortIoDevice
{
    public long Count { get; private set; }

    public void Read(ushort offset, Span<byte> data) => data.Clear();

    public void Write(ushort offset, ReadOnlySpan<byte> data) => Count++;
}
