using SharpVisor.Machine;

namespace SharpVisor.Machine.Tests;

public sealed class MachineControlTests
{
    [Theory]
    [InlineData(0, 1)]
    [InlineData(1, 3)]
    [InlineData(0x21, 67)]
    [InlineData(0xFF, 511)]
    public void DebugExitStatusIsValueShiftedOrOne(byte value, int status)
    {
        var control = new MachineControl();
        control.DebugExit(value);
        Assert.Equal(MachineStopReason.DebugExit, control.StopReason);
        Assert.Equal(status, control.ExitStatus);
    }

    [Fact]
    public void TheFirstStopWins()
    {
        var control = new MachineControl();
        control.PowerOff();
        control.Crash("too late");
        Assert.Equal(MachineStopReason.PowerOff, control.StopReason);
        Assert.Equal(0, control.ExitStatus);
    }

    [Fact]
    public void ListenersRunOnceEvenWhenAddedAfterTheStop()
    {
        var control = new MachineControl();
        int before = 0;
        int after = 0;
        control.OnStop(() => before++);
        control.Reset();
        control.Reset();
        control.OnStop(() => after++);
        Assert.Equal(1, before);
        Assert.Equal(1, after);
        Assert.True(control.WaitForStop(TimeSpan.Zero));
    }

    [Fact]
    public void CrashExitStatusIsTwo()
    {
        var control = new MachineControl();
        control.Crash("triple fault");
        Assert.Equal(2, control.ExitStatus);
        Assert.Equal("triple fault", control.StopDetail);
    }
}
