using SharpVisor.Machine;

namespace SharpVisor.Devices.Tests;

/// <summary>An interrupt controller that remembers every level change, per GSI.</summary>
internal sealed class RecordingInterruptController : IInterruptController
{
    private readonly object _lock = new();
    private readonly Dictionary<uint, bool> _levels = new();
    private readonly Dictionary<uint, int> _risingEdges = new();
    private readonly List<(uint Gsi, bool Asserted)> _history = new();

    public void SetIrqLevel(uint gsi, bool asserted)
    {
        lock (_lock)
        {
            _history.Add((gsi, asserted));
            bool previous = _levels.GetValueOrDefault(gsi);
            if (asserted && !previous)
            {
                _risingEdges[gsi] = _risingEdges.GetValueOrDefault(gsi) + 1;
            }

            _levels[gsi] = asserted;
        }
    }

    public void SignalMsi(ulong address, uint data) => throw new InvalidOperationException("legacy devices do not send MSIs");

    public bool Level(uint gsi)
    {
        lock (_lock)
        {
            return _levels.GetValueOrDefault(gsi);
        }
    }

    public int RisingEdges(uint gsi)
    {
        lock (_lock)
        {
            return _risingEdges.GetValueOrDefault(gsi);
        }
    }

    public IReadOnlyList<(uint Gsi, bool Asserted)> History
    {
        get
        {
            lock (_lock)
            {
                return _history.ToArray();
            }
        }
    }
}
