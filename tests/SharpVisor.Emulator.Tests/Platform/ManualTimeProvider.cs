namespace SharpVisor.Emulator.Tests.Platform;

/// <summary>A clock that moves only when the test says so: nanosecond timestamps and a fixed wall-clock start.</summary>
public sealed class ManualTimeProvider : TimeProvider
{
    private readonly DateTimeOffset _start;
    private long _nanoseconds;

    public ManualTimeProvider(DateTimeOffset? start = null)
    {
        _start = start ?? new DateTimeOffset(2024, 3, 15, 13, 45, 30, TimeSpan.Zero);
    }

    public override long TimestampFrequency => 1_000_000_000;

    public long Nanoseconds => Interlocked.Read(ref _nanoseconds);

    public override long GetTimestamp() => Interlocked.Read(ref _nanoseconds);

    public override DateTimeOffset GetUtcNow() => _start.AddTicks(Interlocked.Read(ref _nanoseconds) / 100);

    public void Advance(long nanoseconds)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(nanoseconds);
        Interlocked.Add(ref _nanoseconds, nanoseconds);
    }

    public void AdvanceMicroseconds(long microseconds) => Advance(microseconds * 1000);

    public void AdvanceMilliseconds(long milliseconds) => Advance(milliseconds * 1_000_000);
}
