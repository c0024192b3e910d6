namespace SharpVisor.Machine;

/// <summary>
/// Runs each vCPU on its own thread until the machine stops. A vCPU whose run ends for a
/// reason of its own (triple fault, internal error) stops the whole machine as crashed.
/// Pausing kicks every vCPU out of its run call and parks its thread until resumed.
/// </summary>
public sealed class VirtualMachineRunner
{
    private readonly IVirtualMachine _machine;
    private readonly IReadOnlyList<IVcpu> _vcpus;
    private readonly List<VcpuExit> _exits = new();
    private readonly ManualResetEventSlim _running = new(true);
    private readonly object _pauseLock = new();
    private int _parkedVcpus;

    public VirtualMachineRunner(IVirtualMachine machine, IReadOnlyList<IVcpu> vcpus)
    {
        _machine = machine;
        _vcpus = vcpus;
    }

    public bool IsPaused => !_running.IsSet;

    /// <summary>How each vCPU's run ended, in the order they ended.</summary>
    public IReadOnlyList<VcpuExit> Exits
    {
        get
        {
            lock (_exits)
            {
                return _exits.ToArray();
            }
        }
    }

    /// <summary>The first exit that was a failure (the one a crash report should show), if any.</summary>
    public VcpuExit? FailureExit => Exits.FirstOrDefault(e => e.Reason is not VcpuExitReason.Stopped);

    /// <summary>
    /// Starts a pause without waiting: every vCPU parks at its next chance. Safe on a vCPU's own
    /// thread (a device that must stop the machine at once); <see cref="Pause"/> waits for it.
    /// </summary>
    public void BeginPause()
    {
        _running.Reset();
        foreach (IVcpu vcpu in _vcpus)
        {
            vcpu.Kick();
        }
    }

    /// <summary>Stops guest progress: returns once every vCPU is out of its run call (or the timeout passed).</summary>
    public bool Pause(TimeSpan timeout)
    {
        BeginPause();

        DateTime deadline = DateTime.UtcNow + timeout;
        lock (_pauseLock)
        {
            while (Volatile.Read(ref _parkedVcpus) < _vcpus.Count && !_machine.Control.IsStopRequested)
            {
                TimeSpan left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero)
                {
                    return false;
                }

                Monitor.Wait(_pauseLock, left);
            }
        }

        return true;
    }

    public void Resume() => _running.Set();

    /// <summary>Runs until the machine stops or <paramref name="timeout"/> elapses; returns false on timeout.</summary>
    public bool Run(TimeSpan? timeout = null)
    {
        MachineControl control = _machine.Control;
        control.OnStop(() =>
        {
            _running.Set();
            foreach (IVcpu vcpu in _vcpus)
            {
                vcpu.Kick();
            }
        });

        var threads = new List<Thread>();
        foreach (IVcpu vcpu in _vcpus)
        {
            var thread = new Thread(() => RunVcpu(vcpu))
            {
                Name = $"vcpu{vcpu.Id}",
                IsBackground = true,
            };
            threads.Add(thread);
            thread.Start();
        }

        bool stopped = control.WaitForStop(timeout ?? Timeout.InfiniteTimeSpan);
        if (!stopped)
        {
            control.Stop(MachineStopReason.PowerOff, 124, "timed out");
        }

        foreach (Thread thread in threads)
        {
            thread.Join();
        }

        return stopped;
    }

    private void RunVcpu(IVcpu vcpu)
    {
        MachineControl control = _machine.Control;
        VcpuExit exit;
        while (true)
        {
            try
            {
                exit = vcpu.Run();
            }
            catch (Exception e)
            {
                exit = new VcpuExit(vcpu.Id, VcpuExitReason.InternalError, $"{e.GetType().Name}: {e.Message}");
            }

            // A kick returns Stopped: either the machine is stopping, or a pause wants the thread parked.
            if (exit.Reason != VcpuExitReason.Stopped || control.IsStopRequested)
            {
                break;
            }

            if (!_running.IsSet)
            {
                Park();
            }
        }

        lock (_exits)
        {
            _exits.Add(exit);
        }

        switch (exit.Reason)
        {
            case VcpuExitReason.Stopped:
                break;
            case VcpuExitReason.Shutdown:
                control.Crash($"vCPU {vcpu.Id} triple-faulted (shutdown)");
                break;
            case VcpuExitReason.HaltedForever:
                control.Crash($"vCPU {vcpu.Id} halted with interrupts disabled");
                break;
            default:
                control.Crash($"vCPU {vcpu.Id}: {exit.Detail}");
                break;
        }
    }

    private void Park()
    {
        lock (_pauseLock)
        {
            _parkedVcpus++;
            Monitor.PulseAll(_pauseLock);
        }

        _running.Wait();
        lock (_pauseLock)
        {
            _parkedVcpus--;
        }
    }
}
