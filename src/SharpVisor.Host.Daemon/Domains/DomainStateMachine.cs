namespace SharpVisor.Host.Domains;

/// <summary>
/// The one place a domain's state changes: which operations each state allows and which
/// transitions are legal. Thread-safe; an illegal request throws
/// <see cref="DomainStateException"/> and changes nothing.
/// </summary>
public sealed class DomainStateMachine
{
    private static readonly Dictionary<DomainState, DomainState[]> s_transitions = new()
    {
        [DomainState.Running] = [DomainState.Paused, DomainState.Shutdown, DomainState.Crashed, DomainState.Dying],
        [DomainState.Paused] = [DomainState.Running, DomainState.Shutdown, DomainState.Crashed, DomainState.Dying],
        [DomainState.Shutdown] = [DomainState.Dying],
        [DomainState.Crashed] = [DomainState.Dying],
        [DomainState.Dying] = [],
    };

    private static readonly Dictionary<DomainOperation, DomainState[]> s_allowed = new()
    {
        [DomainOperation.Pause] = [DomainState.Running],
        [DomainOperation.Unpause] = [DomainState.Paused],
        [DomainOperation.Shutdown] = [DomainState.Running],
        [DomainOperation.Reboot] = [DomainState.Running],
        [DomainOperation.Destroy] = [DomainState.Running, DomainState.Paused, DomainState.Shutdown, DomainState.Crashed],
        [DomainOperation.SetMemory] = [DomainState.Running, DomainState.Paused],
        [DomainOperation.PinVcpu] = [DomainState.Running, DomainState.Paused],
        [DomainOperation.Schedule] = [DomainState.Running, DomainState.Paused],
        [DomainOperation.Snapshot] = [DomainState.Running, DomainState.Paused],
        [DomainOperation.XenStore] = [DomainState.Running, DomainState.Paused],
        [DomainOperation.Protection] = [DomainState.Running, DomainState.Paused],
    };

    private readonly object _lock = new();
    private readonly string _domainName;
    private DomainState _state;

    public DomainStateMachine(string domainName, DomainState initial = DomainState.Running, string? detail = null)
    {
        _domainName = domainName;
        _state = initial;
        Detail = detail;
    }

    public DomainState State
    {
        get
        {
            lock (_lock)
            {
                return _state;
            }
        }
    }

    /// <summary>Why the domain is in its state, for shutdown and crashed domains ("guest powered off", "VMM killed").</summary>
    public string? Detail { get; private set; }

    /// <summary>Raised after every transition, outside the lock.</summary>
    public event Action<DomainState, DomainState>? Changed;

    public static bool IsAllowed(DomainState state, DomainOperation operation) => s_allowed[operation].Contains(state);

    public static bool CanMove(DomainState from, DomainState to) => s_transitions[from].Contains(to);

    /// <summary>Throws unless <paramref name="operation"/> is allowed now.</summary>
    public void Require(DomainOperation operation)
    {
        DomainState state = State;
        if (!IsAllowed(state, operation))
        {
            throw new DomainStateException(Refusal(operation, state));
        }
    }

    /// <summary>Moves to <paramref name="next"/>; throws when the transition is not legal.</summary>
    public void MoveTo(DomainState next, string? detail = null)
    {
        if (!TryMoveTo(next, detail, out DomainState previous))
        {
            throw new DomainStateException($"domain '{_domainName}' cannot go from {Name(previous)} to {Name(next)}");
        }
    }

    /// <summary>Moves when legal (for events that may race with an operation, such as a VMM exit).</summary>
    public bool TryMoveTo(DomainState next, string? detail, out DomainState previous)
    {
        lock (_lock)
        {
            previous = _state;
            if (!CanMove(_state, next))
            {
                return false;
            }

            _state = next;
            Detail = detail;
        }

        Changed?.Invoke(previous, next);
        return true;
    }

    public static string Name(DomainState state) => state.ToString().ToLowerInvariant();

    private string Refusal(DomainOperation operation, DomainState state)
    {
        string verb = operation switch
        {
            DomainOperation.SetMemory => "set the memory of",
            DomainOperation.PinVcpu => "pin the vCPUs of",
            DomainOperation.Schedule => "change the scheduling of",
            DomainOperation.Snapshot => "take a snapshot of",
            DomainOperation.XenStore => "reach the XenStore of",
            DomainOperation.Protection => "reach the kernel protection of",
            _ => operation.ToString().ToLowerInvariant(),
        };
        string hint = (operation, state) switch
        {
            (DomainOperation.Unpause, DomainState.Running) => " (it is not paused)",
            (DomainOperation.Pause, DomainState.Paused) => " (it is already paused)",
            (DomainOperation.Shutdown or DomainOperation.Reboot, DomainState.Paused) => " (unpause it first, or destroy it)",
            (_, DomainState.Shutdown or DomainState.Crashed) => " (it is no longer running; destroy removes it)",
            (_, DomainState.Dying) => " (it is being destroyed)",
            _ => "",
        };
        return $"cannot {verb} domain '{_domainName}': it is {Name(state)}{hint}";
    }
}
