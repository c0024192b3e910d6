using SharpVisor.Machine;

namespace SharpVisor.Machine.Tests;

public sealed class VirtualMachineRunnerTests
{
    private static readonly TimeSpan s_patience = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task AStopRequestKicksEveryVcpuAndRunReturns()
    {
        var machine = new FakeMachine();
        var vcpus = new[] { new ScriptedVcpu(0), new ScriptedVcpu(1) };
        var runner = new VirtualMachineRunner(machine, vcpus);
        Task<bool> run = Task.Run(() => runner.Run(s_patience));
        SpinWait.SpinUntil(() => vcpus.All(v => v.Progress > 0), s_patience);
        machine.Control.PowerOff();
        Assert.True(await run.WaitAsync(s_patience));
        Assert.Equal(2, runner.Exits.Count);
        Assert.Null(runner.FailureExit);
    }

    [Fact]
    public void ATripleFaultCrashesTheMachineAndStopsTheOthers()
    {
        var machine = new FakeMachine();
        var vcpus = new[]
        {
            new ScriptedVcpu(0, run => new VcpuExit(0, VcpuExitReason.Shutdown, "triple fault")),
            new ScriptedVcpu(1),
        };
        var runner = new VirtualMachineRunner(machine, vcpus);
        Assert.True(runner.Run(s_patience));
        Assert.Equal(MachineStopReason.Crashed, machine.Control.StopReason);
        Assert.Equal(2, machine.Control.ExitStatus);
        Assert.Equal(VcpuExitReason.Shutdown, runner.FailureExit!.Reason);
    }

    [Fact]
    public void AnExceptionInRunBecomesAnInternalErrorNotAHostCrash()
    {
        var machine = new FakeMachine();
        var vcpus = new[] { new ScriptedVcpu(0, _ => throw new InvalidOperationException("device exploded")) };
        var runner = new VirtualMachineRunner(machine, vcpus);
        Assert.True(runner.Run(s_patience));
        Assert.Equal(MachineStopReason.Crashed, machine.Control.StopReason);
        Assert.Contains("device exploded", runner.FailureExit!.Detail);
    }

    [Fact]
    public void TimeoutStopsTheMachine()
    {
        var machine = new FakeMachine();
        var runner = new VirtualMachineRunner(machine, [new ScriptedVcpu(0)]);
        Assert.False(runner.Run(TimeSpan.FromMilliseconds(200)));
        Assert.Equal(124, machine.Control.ExitStatus);
    }

    [Fact]
    public async Task PauseStopsProgressAndResumeRestartsIt()
    {
        var machine = new FakeMachine();
        var vcpus = new[] { new ScriptedVcpu(0), new ScriptedVcpu(1) };
        var runner = new VirtualMachineRunner(machine, vcpus);
        Task<bool> run = Task.Run(() => runner.Run(s_patience));
        SpinWait.SpinUntil(() => vcpus.All(v => v.Progress > 0), s_patience);

        Assert.True(runner.Pause(s_patience));
        Assert.True(runner.IsPaused);
        long[] frozen = vcpus.Select(v => v.Progress).ToArray();
        Thread.Sleep(100);
        Assert.Equal(frozen, vcpus.Select(v => v.Progress).ToArray());

        runner.Resume();
        Assert.True(SpinWait.SpinUntil(() => vcpus.All(v => v.Progress > frozen[v.Id]), s_patience));

        machine.Control.PowerOff();
        Assert.True(await run.WaitAsync(s_patience));
    }

    [Fact]
    public async Task StoppingAPausedMachineEndsTheRun()
    {
        var machine = new FakeMachine();
        var runner = new VirtualMachineRunner(machine, [new ScriptedVcpu(0)]);
        Task<bool> run = Task.Run(() => runner.Run(s_patience));
        Thread.Sleep(20);
        Assert.True(runner.Pause(s_patience));
        machine.Control.PowerOff();
        Assert.True(await run.WaitAsync(s_patience));
        Assert.Equal(MachineStopReason.PowerOff, machine.Control.StopReason);
    }
}
