namespace SharpVisor.Machine;

/// <summary>
/// Runs each vCPU on its own thread until the machine stops. A vCPU whose run ends for a
/// reason of its own (triple fault, internal error) stops the whole machine as crashed.
/// </summary>
public sealed class VirtualMachineRunner
{
    private readonly IVirtualMachine _machine;
    private readonly IReadOnlyList<IVcpu> _vcpus;
    private readonly List<VcpuExit> _exits = new();

    public VirtualMachineRunner(IVirtualMachine machine, IReadOnlyList<IVcpu> vcpus)
    {
        _machine = machine;
        _vcpus = vcpus;
    }

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

    /// <summary>Runs until the machine stops or <paramref name="timeout"/> elapses; returns false on timeout.</summary>
    public bool Run(TimeSpan? timeout = null)
    {
        MachineControl control = _machine.Control;
        control.OnStop(() =>
        {
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
        VcpuExit exit;
        try
        {
            exit = vcpu.Run();
        }
        catch (Exception e)
        {
            exit = new VcpuExit(vcpu.Id, VcpuExitReason.InternalError, $"{e.GetType().Name}: {e.Message}");
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
                _machine.Control.Crash($"vCPU {vcpu.Id} triple-faulted (shutdown)");
                break;
            case VcpuExitReason.HaltedForever:
                _machine.Control.Crash($"vCPU {vcpu.Id} halted with interrupts disabled");
                break;
            default:
                _machine.Control.Crash($"vCPU {vcpu.Id}: {exit.Detail}");
                break;
        }
    }
}
