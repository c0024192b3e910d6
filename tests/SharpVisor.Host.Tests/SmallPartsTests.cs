using System.Text;
using SharpVisor.Host.Console;
using SharpVisor.Host.Daemon;
using SharpVisor.Host.Http;
using SharpVisor.Host.Scheduling;

namespace SharpVisor.Host.Tests;

public sealed class SmallPartsTests
{
    [Fact]
    public void ConsoleRingKeepsTheMostRecentBytes()
    {
        var ring = new ConsoleRing(8);
        ring.Append("abc"u8);
        Assert.Equal("abc", Encoding.ASCII.GetString(ring.ToArray()));

        ring.Append("defgh"u8);
        Assert.Equal("abcdefgh", Encoding.ASCII.GetString(ring.ToArray()));

        ring.Append("ij"u8);
        Assert.Equal("cdefghij", Encoding.ASCII.GetString(ring.ToArray()));

        ring.Append("0123456789"u8);
        Assert.Equal("23456789", Encoding.ASCII.GetString(ring.ToArray()));
        Assert.Equal(8, ring.Count);
    }

    [Fact]
    public void BroadcasterGivesLateSubscribersTheHistoryThenLiveOutput()
    {
        var console = new ConsoleBroadcaster(ringBytes: 64);
        console.OutputSink.Write("boot\n"u8);

        using ConsoleSubscription late = console.Subscribe();
        console.Publish("live\n"u8);
        console.Complete();

        Assert.Equal("boot\n", Encoding.ASCII.GetString(late.History));
        Assert.True(late.Live.TryRead(out byte[]? chunk));
        Assert.Equal("live\n", Encoding.ASCII.GetString(chunk!));
        Assert.True(late.Live.Completion.IsCompleted);
        Assert.Equal(10, console.Counters().WriteBytes);
    }

    [Fact]
    public void BroadcasterInputGoesToTheMachine()
    {
        var console = new ConsoleBroadcaster();
        var typed = new List<byte>();
        console.Input = data => typed.AddRange(data.ToArray());

        console.WriteInput("ls\n"u8);

        Assert.Equal("ls\n", Encoding.ASCII.GetString(typed.ToArray()));
        Assert.Equal(3, console.Counters().ReadBytes);
    }

    [Theory]
    [InlineData("all", 4, new[] { 0, 1, 2, 3 })]
    [InlineData("2", 4, new[] { 2 })]
    [InlineData("0-1,3", 4, new[] { 0, 1, 3 })]
    [InlineData("3,1-2,1", 4, new[] { 1, 2, 3 })]
    public void CpuListsParse(string text, int cpuCount, int[] expected) =>
        Assert.Equal(expected, CpuList.Parse(text, cpuCount));

    [Theory]
    [InlineData("4", "does not exist")]
    [InlineData("2-1", "not like")]
    [InlineData("a", "not like")]
    [InlineData("", "not like")]
    [InlineData("1-2-3", "not like")]
    public void BadCpuListsAreRefused(string text, string expected)
    {
        ApiException error = Assert.Throws<ApiException>(() => CpuList.Parse(text, 4));
        Assert.Equal(400, error.StatusCode);
        Assert.Contains(expected, error.Message);
    }

    [Theory]
    [InlineData(256, 100, 1024)]
    [InlineData(512, 200, 2048)]
    [InlineData(1, 1, 4)]
    [InlineData(65535, 10000, 262140)]
    public void XenWeightsMapToCgroupShares(int weight, int cpuWeight, int cpuShares)
    {
        Assert.Equal(cpuWeight, CgroupCpuController.WeightToCpuWeight(weight));
        Assert.Equal(cpuShares, CgroupCpuController.WeightToCpuShares(weight));
    }

    [Theory]
    [InlineData(0, null)]
    [InlineData(50, 50_000L)]
    [InlineData(100, 100_000L)]
    [InlineData(200, 200_000L)]
    public void XenCapsMapToCpuQuota(int cap, long? quota) => Assert.Equal(quota, CgroupCpuController.CapToQuota(cap));

    [Fact]
    public void ProcessInfoReadsThisProcess()
    {
        int pid = Environment.ProcessId;
        Assert.NotNull(ProcessInfo.TryReadStartTicks(pid));
        Assert.True(ProcessInfo.IsAlive(pid, ProcessInfo.TryReadStartTicks(pid)));
        Assert.False(ProcessInfo.IsAlive(pid, ProcessInfo.TryReadStartTicks(pid) + 1));
        Assert.True(ProcessInfo.ResidentBytes(pid) > 1 << 20);
        Assert.True(ProcessInfo.CpuSeconds(pid) > 0);

        var thread = new Thread(() => Thread.Sleep(2000)) { Name = "sv-probe" };
        thread.Start();
        Thread.Sleep(100);
        Assert.Single(ProcessInfo.FindThreads(pid, "sv-probe"));
        thread.Join();
    }

    [Fact]
    public void ProcessInfoSaysWhenAProcessIsGone() => Assert.False(ProcessInfo.IsAlive(int.MaxValue - 1, null));
}
