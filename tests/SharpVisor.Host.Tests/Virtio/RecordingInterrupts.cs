using SharpVisor.Machine;

namespace SharpVisor.Host.Tests.Virtio;

/// <summary>An interrupt controller that records every MSI and GSI level, from any thread.</summary>
public sealed class RecordingInterrupts : IInterruptController
{
    private readonly object _lock = new();
    private readonly List<(ulong Address, uint Data)> _msis = new();
    private readonly Dictionary<uint, bool> _levels = new();

    public IReadOnlyList<(ulong Address, uint Data)> Msis
    {
        get
        {
            lock (_lock)
            {
                return _msis.ToArray();
            }
        }
    }

    public bool IsAsserted(uint gsi)
    {
        lock (_lock)
        {
            return _levels.GetValueOrDefault(gsi);
        }
    }

    public void SetIrqLevel(uint gsi, bool asserted)
    {
        lock (_lock)
        {
            _levels[gsi] = asserted;
            Monitor.PulseAll(_lock);
        }
    }

    public void SignalMsi(ulong address, uint data)
    {
        lock (_lock)
        {
            _msis.Add((address, data));
            Monitor.PulseAll(_lock);
        }
    }

    /// <summary>Waits until an MSI with <paramref name="data"/> has arrived <paramref name="count"/> times.</summary>
    public bool WaitForMsi(uint data, int count = 1, int timeoutMs = 5000)
    {
        DateTime deadline = DateTime.UtcNow.AddMilliseconds(timeoutMs);
        lock (_lock)
        {
            while (_msis.Count(m => m.Data == data) < count)
            {
                TimeSpan left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero || !Monitor.Wait(_lock, left))
                {
                    return _msis.Count(m => m.Data == data) >= count;
                }
            }

            return true;
        }
    }

    public bool WaitForLevel(uint gsi, bool asserted, int timeoutMs = 5000)
    {
        DateTime deadline = DateTime.UtcNow.AddMilliseconds(timeoutMs);
        lock (_lock)
        {
            while (_levels.GetValueOrDefault(gsi) != asserted)
            {
                TimeSpan left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero || !Monitor.Wait(_lock, left))
                {
                    return _levels.GetValueOrDefault(gsi) == asserted;
                }
            }

            return true;
        }
    }
}
