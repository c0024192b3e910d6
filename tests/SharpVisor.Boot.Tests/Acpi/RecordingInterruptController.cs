using SharpVisor.Machine;

namespace SharpVisor.Boot.Tests.Acpi;

/// <summary>Remembers GSI levels the device under test drove.</summary>
public sealed class RecordingInterruptController : IInterruptController
{
    private readonly Dictionary<uint, bool> _levels = new();

    public List<(uint Gsi, bool Level)> Changes { get; } = new();

    public bool Level(uint gsi) => _levels.TryGetValue(gsi, out bool level) && level;

    public void SetIrqLevel(uint gsi, bool asserted)
    {
        _levels[gsi] = asserted;
        Changes.Add((gsi, asserted));
    }

    public void SignalMsi(ulong address, uint data)
    {
    }
}
