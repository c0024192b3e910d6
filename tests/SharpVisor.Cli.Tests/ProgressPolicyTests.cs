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
        Assert.Equal(ProgressVerdict.Quiet, policy.Next(100, [new(5, 1000), new(7, 1000)]));

        // vCPU 1 stops halting: one busy interval is not yet trouble, the second is.
        Assert.Equal(ProgressVerdict.Quiet, policy.Next(100, [new(6, 2000), new(7, 2000)]));
        Assert.Equal(ProgressVerdict.Stuck, policy.Next(100, [new(7, 3000), new(7, 3000)]));
        Assert.Equal([1], policy.StuckVcpus);

        // Still stuck: said once, not repeated every interval.
        Assert.Equal(ProgressVerdict.Quiet, policy.Next(100, [new(8, 4000), new(7, 4000)]));
        Assert.Equal(ProgressVerdict.Quiet, policy.Next(100, [new(9, 5000), new(7, 5000)]));

        // It halts again, then gets stuck again: a new episode.
        Assert.Equal(ProgressVerdict.Quiet, policy.Next(100, [new(10, 6000), new(8, 6000)]));
        Assert.Equal(ProgressVerdict.Quiet, policy.Next(100, [new(11, 7000), new(8, 7000)]));
        Assert.Equal(ProgressVerdict.Stuck, policy.Next(100, [new(12, 8000), new(8, 8000)]));
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
