namespace SharpVisor.Cli.Tests;

/// <summary>
/// When SharpVisor may write its own progress lines to the guest's console: before the guest's
/// first byte, on a non-interactive console or with --verbose; on an interactive console after
/// the first byte only for a vCPU that stays busy without halting while the guest is silent.
/// </summary>
public sealed class ProgressPolicyTests
{
    private static readonly VcpuActivity[] s_idle = [new(Halts: 0, Instructions: 0)];

    [Fact]
    public void SilentBootIsReportedBeforeTheFirstGuestByte()
    {
        var policy = new ProgressPolicy(quietAfterGuestOutput: true);
        Assert.Equal(ProgressVerdict.Silent, policy.Next(0, s_idle));
        Assert.Equal(ProgressVerdict.Silent, policy.Next(0, s_idle));
    }

    [Fact]
    public void InteractiveConsoleStaysQuietAfterTheGuestSpokeWhileTheGuestIdles()
    {
        var policy = new ProgressPolicy(quietAfterGuestOutput: true);
        Assert.Equal(ProgressVerdict.Quiet, policy.Next(100, [new(1, 1000)]));
        for (int i = 2; i < 20; i++)
        {
            // Idle at the shell prompt: it halts every interval.
            Assert.Equal(ProgressVerdict.Quiet, policy.Next(100, [new(i, i * 1000)]));
        }
    }

    [Fact]
    public void NonInteractiveConsoleReportsEverySilentInterval()
    {
        var policy = new ProgressPolicy(quietAfterGuestOutput: false);
        Assert.Equal(ProgressVerdict.Quiet, policy.Next(100, [new(1, 1000)]));
        Assert.Equal(ProgressVerdict.Silent, policy.Next(100, [new(2, 2000)]));
        Assert.Equal(ProgressVerdict.Silent, policy.Next(100, [new(3, 3000)]));
    }

    [Fact]
    public void AVcpuBusyWithoutHaltingWhileTheGuestIsSilentIsReportedOncePerEpisode()
    {
        var policy = new ProgressPolicy(quietAfterGuestOutput: true);
        long halts0 = 5;
        long tick = 1;
        Assert.Equal(ProgressVerdict.Quiet, policy.Next(100, [new(halts0, 1000), new(7, 1000)]));

        // vCPU 1 stops halting: fewer than StuckIntervals busy intervals are not trouble (a slow
        // boot step); the StuckIntervals-th is.
        for (int i = 1; i < ProgressPolicy.StuckIntervals; i++)
        {
            tick++;
            Assert.Equal(ProgressVerdict.Quiet, policy.Next(100, [new(++halts0, tick * 1000), new(7, tick * 1000)]));
        }

        tick++;
        Assert.Equal(ProgressVerdict.Stuck, policy.Next(100, [new(++halts0, tick * 1000), new(7, tick * 1000)]));
        Assert.Equal([1], policy.StuckVcpus);

        // Still stuck: said once, not repeated every interval.
        for (int i = 0; i < 2 * ProgressPolicy.StuckIntervals; i++)
        {
            tick++;
            Assert.Equal(ProgressVerdict.Quiet, policy.Next(100, [new(++halts0, tick * 1000), new(7, tick * 1000)]));
        }

        // It halts once, then gets stuck again: a new episode.
        tick++;
        Assert.Equal(ProgressVerdict.Quiet, policy.Next(100, [new(++halts0, tick * 1000), new(8, tick * 1000)]));
        for (int i = 1; i < ProgressPolicy.StuckIntervals; i++)
        {
            tick++;
            Assert.Equal(ProgressVerdict.Quiet, policy.Next(100, [new(++halts0, tick * 1000), new(8, tick * 1000)]));
        }

        tick++;
        Assert.Equal(ProgressVerdict.Stuck, policy.Next(100, [new(++halts0, tick * 1000), new(8, tick * 1000)]));
    }

    [Fact]
    public void ABusyVcpuWhileTheGuestPrintsIsNotTrouble()
    {
        var policy = new ProgressPolicy(quietAfterGuestOutput: true);
        long bytes = 100;
        for (int i = 1; i < 10; i++)
        {
            bytes += 10;
            Assert.Equal(ProgressVerdict.Quiet, policy.Next(bytes, [new(0, i * 1000)]));
        }
    }
}
