namespace SharpVisor.Boot.Tests.Acpi;

/// <summary>A monotonic clock in nanoseconds that moves only when the test says so.</summary>
public sealed class ManualClock : TimeProvider
{
    private long _nanoseconds;

    public override long TimestampFrequency => 1_000_000_000;

    public override long GetTimestamp() => Interlocked.Read(ref _nanoseconds);

    public void Advance(TimeSpan by) => Interlocked.Add(ref _nanoseconds, (long)by.TotalNanoseconds);
}
