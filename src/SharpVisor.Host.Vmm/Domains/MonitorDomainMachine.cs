using SharpVisor.Devices.Virtio;
using SharpVisor.Host.Vmm;
using SharpVisor.Machine;

namespace SharpVisor.Host.Domains;

/// <summary>
/// The real machine of a per-domain VMM: a <see cref="VirtualMachineMonitor"/> running on its
/// own thread. What the machine cannot do (a balloon it was built without) is refused with
/// <see cref="NotSupportedException"/>, which the API turns into a 400.
/// </summary>
public sealed class MonitorDomainMachine : IDomainMachine
{
    private static readonly TimeSpan s_pauseTimeout = TimeSpan.FromSeconds(5);

    private readonly VirtualMachineMonitor _monitor;
    private Thread? _thread;

    public MonitorDomainMachine(VirtualMachineMonitor monitor)
    {
        _monitor = monitor;
        XenStore = monitor.Xen is { } xen ? new DomainXenStore(xen.Store, xen.Domain.DomainId) { Channels = xen.InterdomainChannels } : null;
        ProtectionEvents = monitor.Protector is { } protector ? new ProtectionEventLog(protector) : null;
    }

    public SharpVisor.Security.KernelProtector? Protector => _monitor.Protector;

    public ProtectionEventLog? ProtectionEvents { get; }

    public event Action<DomainStopInfo>? Stopped;

    public string AcceleratorName => _monitor.Accelerator.Accelerator.Name;

    public string AcceleratorReason => _monitor.Accelerator.Reason;

    public void Start()
    {
        _thread = new Thread(Run) { Name = "vmm-run", IsBackground = true };
        _thread.Start();
    }

    public void StartPaused()
    {
        // Every vCPU is kicked before its first run call, so it parks at once; virtual time stands still.
        _monitor.Pause(TimeSpan.Zero);
        Start();
    }

    public void Pause()
    {
        if (!_monitor.Pause(s_pauseTimeout))
        {
            _monitor.Resume();
            throw new TimeoutException($"the vCPUs did not stop within {s_pauseTimeout.TotalSeconds:0} s");
        }
    }

    public void Resume() => _monitor.Resume();

    public SnapshotSummary SaveSnapshot(string statePath, string memoryPath, bool diff) => _monitor.SaveSnapshot(statePath, memoryPath, diff);

    public SharpVisor.Host.Migration.MigrationResult MigrateTo(Stream stream, SharpVisor.Host.Migration.MigrationOptions options, Action<string> progress) =>
        _monitor.MigrateTo(stream, options, progress);

    public void PressPowerButton() => _monitor.PressPowerButton();

    public void SendCtrlAltDel()
    {
        if (!_monitor.Legacy.KeyboardController.InjectCtrlAltDel())
        {
            throw new InvalidOperationException(
                "the guest's keyboard did not take Ctrl-Alt-Del: the guest has disabled it, or has not read the keys sent before");
        }
    }

    public void Stop(string detail) => _monitor.Stop(detail);

    public void WriteConsoleInput(ReadOnlySpan<byte> data)
    {
        // A Xen domain's console is hvc0; the UART gets the keys too, as `sharpvisor run` does.
        _monitor.Serial.EnqueueInput(data);
        _monitor.Xen?.Console.WriteInput(data);
    }

    public DomainXenStore? XenStore { get; }

    public void SetBalloonTarget(long amountMib)
    {
        RequireBalloon();
        try
        {
            _monitor.SetBalloonTarget(amountMib);
        }
        catch (ArgumentOutOfRangeException e)
        {
            throw new NotSupportedException(e.Message.Split(" (Parameter", 2)[0]);
        }
    }

    public BalloonState ReadBalloon()
    {
        VirtioBalloonDevice balloon = RequireBalloon();
        return new BalloonState(balloon.TargetPages, balloon.ActualPages, balloon.Statistics);
    }

    public void SetBalloonStatisticsInterval(int seconds)
    {
        RequireBalloon();
        try
        {
            _monitor.Devices.SetStatisticsInterval(seconds);
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentOutOfRangeException)
        {
            throw new NotSupportedException(e.Message.Split(" (Parameter", 2)[0]);
        }
    }

    public DomainCounters ReadCounters()
    {
        VirtioBalloonDevice? balloon = _monitor.Devices.Balloon;
        var counters = new DomainCounters
        {
            Exits = _monitor.ExitCounts(),
            Devices = _monitor.Devices.Devices.Select(d => new DeviceCounters(
                d.Name, d.Device.IoCounters.ReadRequests, d.Device.IoCounters.ReadBytes, d.Device.IoCounters.WriteRequests, d.Device.IoCounters.WriteBytes, d.Kind)).ToList(),
            BalloonTargetMib = balloon is null ? null : balloon.TargetPages / BalloonState.PagesPerMib,
            BalloonActualMib = balloon is null ? null : balloon.ActualPages / BalloonState.PagesPerMib,
            ProtectionViolations = _monitor.Protector is { } protector
                ? Enum.GetValues<SharpVisor.Machine.Protection.ProtectionViolationKind>().ToDictionary(SharpVisor.Security.KernelProtector.KindName, protector.Violations)
                : null,
        };
        if (_monitor.Xen is { } xen)
        {
            // Xen's balloon in the same terms as virtio's: what the guest is asked to give back
            // (memory less memory/target) and what it has given back (frames released on the host).
            long memoryMib = (long)(xen.Domain.Memory.RamSize >> 20);
            counters = counters with
            {
                BalloonTargetMib = xen.MemoryTargetMib is { } target ? Math.Max(0, memoryMib - target) : null,
                BalloonActualMib = xen.Domain.BalloonedPages / BalloonState.PagesPerMib,
            };
        }

        return counters;
    }

    public void UpdateDrive(string id, string? path, RateLimitConfiguration? rateLimit) => _monitor.Devices.UpdateDisk(id, path, rateLimit);

    public void UpdateNetworkInterface(string id, RateLimitConfiguration? rx, RateLimitConfiguration? tx) =>
        _monitor.Devices.UpdateNetworkInterface(id, rx, tx);

    public void Dispose()
    {
        if (_thread is { IsAlive: true })
        {
            _monitor.Stop("the VMM is shutting down");
            _thread.Join(TimeSpan.FromSeconds(10));
        }

        _monitor.Dispose();
    }

    private VirtioBalloonDevice RequireBalloon() =>
        _monitor.Devices.Balloon ?? throw new NotSupportedException("this machine has no balloon device; configure one before boot (PUT /balloon)");

    private void Run()
    {
        RunOutcome outcome;
        try
        {
            outcome = _monitor.Run();
        }
        catch (Exception e)
        {
            outcome = new RunOutcome(2, MachineStopReason.Crashed, $"the VMM failed: {e.Message}", null);
        }

        string detail = outcome.CrashReport is null ? outcome.Detail : $"{outcome.Detail}\n{outcome.CrashReport}";
        Stopped?.Invoke(new DomainStopInfo(outcome.Reason, outcome.ExitStatus, detail));
    }
}
