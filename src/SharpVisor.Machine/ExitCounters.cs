using System.Collections.Concurrent;

namespace SharpVisor.Machine;

/// <summary>Counts vCPU exits by reason; read by metrics from other threads.</summary>
public sealed class ExitCounters
{
    private readonly ConcurrentDictionary<string, StrongBox> _counts = new();

    private sealed class StrongBox
    {
        public long Value;
    }

    public void Increment(string reason) => Interlocked.Increment(ref _counts.GetOrAdd(reason, _ => new StrongBox()).Value);

    /// <summary>Adds <paramref name="count"/> at once (a software accelerator's instructions per time slice).</summary>
    public void Add(string reason, long count) => Interlocked.Add(ref _counts.GetOrAdd(reason, _ => new StrongBox()).Value, count);

    public long this[string reason] => _counts.TryGetValue(reason, out StrongBox? box) ? Interlocked.Read(ref box.Value) : 0;

    public IReadOnlyDictionary<string, long> Snapshot() => _counts.ToDictionary(p => p.Key, p => Interlocked.Read(ref p.Value.Value));
}
