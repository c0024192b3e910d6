using SharpVisor.Host.Tests.Virtio;
using SharpVisor.Host.Vmm;

namespace SharpVisor.Host.Tests.Hardening;

/// <summary>Issue 17, items 2 and 6: the balloon statistics timer, changed and stopped safely.</summary>
public sealed class BalloonStatisticsTimerTests
{
    [Theory]
    [InlineData(-1)]
    [InlineData(BalloonConfiguration.MaxStatisticsIntervalSeconds + 1)]
    [InlineData(5_000_000)]
    [InlineData(int.MaxValue)]
    public void ARefusedIntervalLeavesPollingAsItWas(int seconds)
    {
        using var bench = new DeviceBench(DeviceBench.Configuration() with { Balloon = new BalloonConfiguration { StatisticsIntervalSeconds = 5 } });

        Assert.Throws<ArgumentOutOfRangeException>(() => bench.Devices.SetStatisticsInterval(seconds));

        Assert.Equal(5, bench.Devices.StatisticsIntervalSeconds);
        Assert.True(bench.Devices.IsPollingStatistics);
    }

    [Fact]
    public void ChangingTheIntervalReplacesTheTimer()
    {
        using var bench = new DeviceBench(DeviceBench.Configuration() with { Balloon = new BalloonConfiguration { StatisticsIntervalSeconds = 5 } });

        bench.Devices.SetStatisticsInterval(0);
        Assert.False(bench.Devices.IsPollingStatistics);
        bench.Devices.SetStatisticsInterval(BalloonConfiguration.MaxStatisticsIntervalSeconds);
        Assert.True(bench.Devices.IsPollingStatistics);
        Assert.Equal(BalloonConfiguration.MaxStatisticsIntervalSeconds, bench.Devices.StatisticsIntervalSeconds);
    }

    [Fact]
    public void DisposeWaitsForTheTimerAndLaterChangesAreIgnored()
    {
        var bench = new DeviceBench(DeviceBench.Configuration() with { Balloon = new BalloonConfiguration { StatisticsIntervalSeconds = 1 } });
        bench.Dispose();

        Assert.False(bench.Devices.IsPollingStatistics);
        bench.Devices.SetStatisticsInterval(1);
        Assert.False(bench.Devices.IsPollingStatistics);
    }
}
