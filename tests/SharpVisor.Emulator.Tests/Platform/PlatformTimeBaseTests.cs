using SharpVisor.Emulator.Platform;

namespace SharpVisor.Emulator.Tests.Platform;

public class PlatformTimeBaseTests
{
    [Fact]
    public void TscRunsAtTheAdvertisedFrequency()
    {
        var clock = new ManualTimeProvider();
        var time = new PlatformTimeBase(clock, 2_500_000_000);
        clock.AdvanceMilliseconds(3);
        Assert.Equal(3_000_000, time.NowNanoseconds);
        Assert.Equal(7_500_000UL, time.ReadTsc());
        Assert.Equal(3_000_000, time.TscToNanoseconds(7_500_000));
        Assert.Equal(3_000_001, time.TscToNanoseconds(7_500_001)); // first nanosecond at or after the tick
    }

    [Fact]
    public void ForeignTimestampFrequenciesAreScaled()
    {
        var clock = new CoarseTimeProvider();
        var time = new PlatformTimeBase(clock);
        clock.Ticks += 25; // 2.5 µs at 10 MHz
        Assert.Equal(2_500, time.NowNanoseconds);
    }

    [Fact]
    public void WallClockStartsAtCreation()
    {
        var clock = new ManualTimeProvider();
        clock.AdvanceMilliseconds(10);
        var time = new PlatformTimeBase(clock);
        Assert.Equal(clock.GetUtcNow(), time.WallClockAtZero);
        clock.AdvanceMilliseconds(5);
        Assert.Equal(clock.GetUtcNow(), time.WallClockAt(time.NowNanoseconds));
    }

    [Fact]
    public void SystemClockIsMonotonic()
    {
        var time = new PlatformTimeBase();
        long a = time.NowNanoseconds;
        ulong tscA = time.ReadTsc();
        Thread.Sleep(2);
        Assert.True(time.NowNanoseconds > a);
        Assert.True(time.ReadTsc() > tscA);
    }

    [Fact]
    public void RejectsAbsurdTscFrequencies()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new PlatformTimeBase(null, 1000));
    }

    private sealed class CoarseTimeProvider : TimeProvider
    {
        public long Ticks { get; set; } = 1_000;

        public override long TimestampFrequency => 10_000_000;

        public override long GetTimestamp() => Ticks;
    }
}
