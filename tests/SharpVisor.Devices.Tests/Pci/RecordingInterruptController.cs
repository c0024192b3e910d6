using System.Collections.Concurrent;
using SharpVisor.Machine;

namespace SharpVisor.Devices.Tests.Pci;

/// <summary>An interrupt controller that remembers what devices did to it.</summary>
public sealed class RecordingInterruptController : IInterruptController
{
    private readonly ConcurrentDictionary<uint, bool> _levels = new();

    public ConcurrentQueue<(ulong Address, uint Data)> Messages { get; } = new();

    public ConcurrentQueue<(uint Gsi, bool Level)> LevelChanges { get; } = new();

    public bool Level(uint gsi) => _levels.TryGetValue(gsi, out bool level) && level;

    public void SetIrqLevel(uint gsi, bool asserted)
    {
        _levels[gsi] = asserted;
        LevelChanges.Enqueue((gsi, asserted));
    }

    public void SignalMsi(ulong address, uint data) => Messages.Enqueue((address, data));
}
