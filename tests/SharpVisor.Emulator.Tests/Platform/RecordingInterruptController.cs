using SharpVisor.Machine;

namespace SharpVisor.Emulator.Tests.Platform;

/// <summary>Records every level change and MSI, and counts rising edges per GSI.</summary>
public sealed class RecordingInterruptController : IInterruptController
{
    private readonly object _lock = new();
    private readonly Dictionary<uint, bool> _levels = new();
    private readonly Dictionary<uint, int> _risingEdges = new();

    public List<(uint Gsi, bool Level)> Changes { get; } = new();

    public List<(ulong Address, uint Data)> Msis { get; } = new();

    public void SetIrqLevel(uint gsi, bool asserted)
    {
        lock (_lock)
        {
            Changes.Add((gsi, asserted));
            bool old = _levels.GetValueOrDefault(gsi);
            if (asserted && !old)
            {
                _risingEdges[gsi] = _risingEdges.GetValueOrDefault(gsi) + 1;
            }

            _levels[gsi] = asserted;
        }
    }

    public void SignalMsi(ulong address, uint data)
    {
        lock (_lock)
        {
            Msis.Add((address, data));
        }
    }

    public int RisingEdges(uint gsi)
    {
        lock (_lock)
        {
            return _risingEdges.GetValueOrDefault(gsi);
        }
    }

    public bool Level(uint gsi)
    {
        lock (_lock)
        {
            return _levels.GetValueOrDefault(gsi);
        }
    }
}
