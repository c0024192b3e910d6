using SharpVisor.Host.Domains;

namespace SharpVisor.Host.Tests;

public sealed class DomainStateMachineTests
{
    [Theory]
    [InlineData(DomainState.Running, DomainOperation.Pause, true)]
    [InlineData(DomainState.Paused, DomainOperation.Pause, false)]
    [InlineData(DomainState.Running, DomainOperation.Unpause, false)]
    [InlineData(DomainState.Paused, DomainOperation.Unpause, true)]
    [InlineData(DomainState.Running, DomainOperation.Shutdown, true)]
    [InlineData(DomainState.Paused, DomainOperation.Shutdown, false)]
    [InlineData(DomainState.Shutdown, DomainOperation.Shutdown, false)]
    [InlineData(DomainState.Crashed, DomainOperation.Destroy, true)]
    [InlineData(DomainState.Shutdown, DomainOperation.Destroy, true)]
    [InlineData(DomainState.Dying, DomainOperation.Destroy, false)]
    [InlineData(DomainState.Crashed, DomainOperation.Unpause, false)]
    [InlineData(DomainState.Paused, DomainOperation.SetMemory, true)]
    [InlineData(DomainState.Shutdown, DomainOperation.Schedule, false)]
    public void OperationsAreAllowedOnlyInTheirStates(DomainState state, DomainOperation operation, bool allowed)
    {
        var machine = new DomainStateMachine("web", state);

        if (allowed)
        {
            machine.Require(operation);
        }
        else
        {
            DomainStateException error = Assert.Throws<DomainStateException>(() => machine.Require(operation));
            Assert.Contains("'web'", error.Message);
            Assert.Contains(DomainStateMachine.Name(state), error.Message);
        }

        Assert.Equal(state, machine.State);
    }

    [Fact]
    public void IllegalTransitionsThrowAndChangeNothing()
    {
        var machine = new DomainStateMachine("web");
        machine.MoveTo(DomainState.Shutdown, "guest powered off");

        Assert.Throws<DomainStateException>(() => machine.MoveTo(DomainState.Running));
        Assert.False(machine.TryMoveTo(DomainState.Crashed, "late exit", out DomainState previous));

        Assert.Equal(DomainState.Shutdown, previous);
        Assert.Equal(DomainState.Shutdown, machine.State);
        Assert.Equal("guest powered off", machine.Detail);
    }

    [Fact]
    public void TransitionsAreAnnounced()
    {
        var machine = new DomainStateMachine("web");
        var seen = new List<(DomainState, DomainState)>();
        machine.Changed += (from, to) => seen.Add((from, to));

        machine.MoveTo(DomainState.Paused);
        machine.MoveTo(DomainState.Running);
        machine.MoveTo(DomainState.Dying);

        Assert.Equal([(DomainState.Running, DomainState.Paused), (DomainState.Paused, DomainState.Running), (DomainState.Running, DomainState.Dying)], seen);
        Assert.Throws<DomainStateException>(() => machine.MoveTo(DomainState.Running));
    }

    [Fact]
    public void DyingIsTheEnd()
    {
        foreach (DomainState next in Enum.GetValues<DomainState>())
        {
            Assert.False(DomainStateMachine.CanMove(DomainState.Dying, next));
        }
    }
}
