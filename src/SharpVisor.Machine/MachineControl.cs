namespace SharpVisor.Machine;

/// <summary>
/// The machine's power switch. Devices (the i8042, the debug-exit port, ACPI) and the VMM
/// request a stop here; the first request wins and every vCPU is kicked out of its run call.
/// </summary>
public sealed class MachineControl
{
    private readonly ManualResetEventSlim _stopped = new(false);
    private readonly object _lock = new();
    private readonly List<Action> _stopListeners = new();

    public MachineStopReason? StopReason { get; private set; }

    /// <summary>The VMM's exit status: 0 for power-off and reset, the debug-exit status, 2 for a crash.</summary>
    public int ExitStatus { get; private set; }

    public string? StopDetail { get; private set; }

    public bool IsStopRequested => StopReason is not null;

    public WaitHandle StoppedHandle => _stopped.WaitHandle;

    /// <summary>Called once when a stop is requested (the runner kicks vCPUs from here).</summary>
    public void OnStop(Action listener)
    {
        bool already;
        lock (_lock)
        {
            already = StopReason is not null;
            if (!already)
            {
                _stopListeners.Add(listener);
            }
        }

        if (already)
        {
            listener();
        }
    }

    public void PowerOff(string detail = "guest powered off") => Stop(MachineStopReason.PowerOff, 0, detail);

    public void Reset(string detail = "guest requested a reset") => Stop(MachineStopReason.Reset, 0, detail);

    public void DebugExit(byte value) => Stop(MachineStopReason.DebugExit, (value << 1) | 1, $"debug exit with value 0x{value:x2}");

    public void Crash(string detail) => Stop(MachineStopReason.Crashed, 2, detail);

    public void Stop(MachineStopReason reason, int exitStatus, string detail)
    {
        Action[] listeners;
        lock (_lock)
        {
            if (StopReason is not null)
            {
                return;
            }

            StopReason = reason;
            ExitStatus = exitStatus;
            StopDetail = detail;
            listeners = _stopListeners.ToArray();
            _stopListeners.Clear();
        }

        _stopped.Set();
        foreach (Action listener in listeners)
        {
            listener();
        }
    }

    public bool WaitForStop(TimeSpan timeout) => _stopped.Wait(timeout);
}
