using SharpVisor.Boot.Acpi;
using SharpVisor.Machine;
using SharpVisor.Machine.Snapshots;

namespace SharpVisor.Boot.Tests.Acpi;

/// <summary>The PM timer is part of the acpi-pm snapshot section (format version 2): a restored device counts on from the saved value, on its own clock.</summary>
public sealed class AcpiPmSnapshotTests
{
    [Fact]
    public void ARestoredPmTimerCountsOnFromTheSavedValue()
    {
        var sourceClock = new ManualClock();
        var source = new AcpiPmDevice(new MachineControl(), new InterruptLine(new RecordingInterruptController(), AcpiPmDevice.DefaultSciIrq), sourceClock);
        sourceClock.Advance(TimeSpan.FromSeconds(1234.5));
        uint saved = source.TimerValue;
        var writer = new SnapshotWriter();
        source.SaveState(writer);

        // Another host whose clock started elsewhere: the guest must not see the timer jump.
        var clock = new ManualClock();
        clock.Advance(TimeSpan.FromSeconds(7));
        var restored = new AcpiPmDevice(new MachineControl(), new InterruptLine(new RecordingInterruptController(), AcpiPmDevice.DefaultSciIrq), clock);
        var reader = new SnapshotReader(source.SnapshotTag, writer.ToArray());
        restored.LoadState(reader);
        reader.EnsureEnd();
        Assert.InRange(unchecked(restored.TimerValue - saved), 0u, 1u);
        clock.Advance(TimeSpan.FromMilliseconds(10));
        Assert.InRange(unchecked(restored.TimerValue - saved), 35_795u, 35_796u);
    }
}
