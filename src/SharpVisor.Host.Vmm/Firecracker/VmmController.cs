using SharpVisor.Host.Console;
using SharpVisor.Host.Domains;
using SharpVisor.Host.Http;
using SharpVisor.Host.Vmm;

namespace SharpVisor.Host.Firecracker;

/// <summary>
/// The brain of a per-domain VMM, behind the Firecracker API: holds the pre-boot
/// configuration, builds and starts the machine on InstanceStart, pauses, resumes and stops
/// it. Every request is checked against the current state first; a refused request changes
/// nothing. Thread-safe: Kestrel calls it from many threads.
/// </summary>
public sealed partial class VmmController : IDisposable
{
    public const string AppName = "sharpvisor";

    private readonly object _lock = new();
    private readonly IDomainMachineFactory _factory;
    private readonly ConsoleBroadcaster _console;
    private readonly TaskCompletionSource<DomainStopInfo> _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private VmConfiguration _configuration = new();

    /// <summary>The MMDS data store (PUT/PATCH/GET /mmds work before and after InstanceStart).</summary>
    public Mmds.MmdsDataStore MmdsData { get; } = new();
    private IDomainMachine? _machine;
    private VmmState _state = VmmState.NotStarted;
    private long? _balloonTargetMib;
    private DomainStopInfo? _stopInfo;
    private string? _serialOutputPath;
    private SerialOutputFile? _serialOutput;

    public VmmController(VmmIdentity identity, IDomainMachineFactory factory, ConsoleBroadcaster console)
    {
        Identity = identity;
        _factory = factory;
        _console = console;
        Log = new VmmLog(identity.InstanceId);
    }

    public VmmIdentity Identity { get; }

    /// <summary>The VMM's own log (PUT /logger).</summary>
    public VmmLog Log { get; }

    /// <summary>Firecracker-format metrics (PUT /metrics, FlushMetrics).</summary>
    public VmmMetrics Metrics { get; } = new();

    /// <summary>Raised after every state change (the state file follows it).</summary>
    public event Action<VmmStatus>? StatusChanged;

    /// <summary>Completes when the machine has stopped for good.</summary>
    public Task<DomainStopInfo> Stopped => _stopped.Task;

    public VmmState State
    {
        get
        {
            lock (_lock)
            {
                return _state;
            }
        }
    }

    public DateTimeOffset? StartedAt { get; private set; }

    public string? AcceleratorName { get; private set; }

    public InstanceInfo Describe() => new()
    {
        AppName = AppName,
        Id = Identity.InstanceId,
        State = State switch
        {
            VmmState.NotStarted => InstanceInfo.NotStarted,
            VmmState.Paused => InstanceInfo.Paused,
            _ => InstanceInfo.Running,
        },
        VmmVersion = VmmVersion.Current,
    };

    public VmmStatus Status()
    {
        lock (_lock)
        {
            return new VmmStatus
            {
                Pid = Environment.ProcessId,
                DomainId = Identity.DomainId,
                Name = Identity.InstanceId,
                State = _state,
                Accelerator = AcceleratorName ?? Identity.Accelerator,
                StartedAt = StartedAt,
                VcpuCount = _configuration.MachineConfig.VcpuCount,
                MemSizeMib = _configuration.MachineConfig.MemSizeMib,
                Stop = _stopInfo is null ? null : VmmStopStatus.From(_stopInfo),
            };
        }
    }

    public MachineConfig GetMachineConfig()
    {
        lock (_lock)
        {
            return _configuration.ToFull().MachineConfig!;
        }
    }

    public FullVmConfiguration GetFullConfig()
    {
        lock (_lock)
        {
            FullVmConfiguration full = _configuration.ToFull();
            if (full.Balloon is not null && _balloonTargetMib is long target)
            {
                full = full with { Balloon = full.Balloon with { AmountMib = target } };
            }

            return full;
        }
    }

    public Balloon GetBalloon()
    {
        lock (_lock)
        {
            Balloon balloon = _configuration.Balloon ?? throw ApiException.BadRequest("no balloon device is configured");
            return _balloonTargetMib is long target ? balloon with { AmountMib = target } : balloon;
        }
    }

    public void ConfigurePreBoot(Action<VmConfiguration> change)
    {
        lock (_lock)
        {
            RequireNotStarted();
            change(_configuration);
        }
    }

    /// <summary>PUT /serial sent the serial output to a file: standard output no longer gets it.</summary>
    public bool SerialGoesToFile => Volatile.Read(ref _serialOutputPath) is not null;

    /// <summary>PUT /serial: pre-boot, like Firecracker; the file or FIFO must exist (it is opened to check).</summary>
    public void ConfigureSerial(SerialDevice serial)
    {
        if (serial.RateLimiter is not null)
        {
            throw ApiException.BadRequest("rate_limiter on the serial device is not supported by SharpVisor yet; leave it out");
        }

        lock (_lock)
        {
            RequireNotStarted();
            if (serial.SerialOutPath is { } path)
            {
                VmmLog.OpenExisting(path, "serial_out_path").Dispose();
            }

            Volatile.Write(ref _serialOutputPath, serial.SerialOutPath);
        }
    }

    /// <summary>Replaces the whole pre-boot configuration (the --config-file path).</summary>
    public void LoadConfiguration(FullVmConfiguration full)
    {
        VmConfiguration configuration = VmConfiguration.FromFull(full);
        lock (_lock)
        {
            RequireNotStarted();
            _configuration = configuration;
        }
    }

    /// <summary>PUT /actions InstanceStart: builds the machine and runs it.</summary>
    public void Start()
    {
        lock (_lock)
        {
            RequireNotStarted();
            Vmm.MachineConfiguration spec = Identity.Xen == Vmm.XenMode.Driver
                ? Domains.XenDriverDomainMachine.Configuration(Identity.InstanceId, Identity.DomainId, Identity.XenLinkDirectory)
                : _configuration.ToMachineConfiguration(Identity.InstanceId, Identity.Accelerator);
            spec = spec with
            {
                Log = line => Log.Warning("vmm::devices", line),
                Xen = Identity.Xen,
                XenLinkDirectory = Identity.XenLinkDirectory,
                XenDomainId = Identity.XenLinkDirectory is not null ? Identity.DomainId : null,
                BootTimer = Identity.BootTimer ? line => Log.Info("vmm::devices::pseudo::boot_timer", line) : null,
            };
            if (_configuration.Mmds is { } mmds)
            {
                // The guest reaches the MMDS through the NICs PUT /mmds/config named.
                MmdsData.Version = mmds.Version == "V2" ? Mmds.MmdsVersion.V2 : Mmds.MmdsVersion.V1;
                var stack = new Mmds.MmdsNetworkStack(MmdsData, _configuration.MmdsAddress!);
                spec = spec with
                {
                    NetworkInterfaces = spec.NetworkInterfaces.Select(n => n.Id is { } id && mmds.NetworkInterfaces.Contains(id) ? n with { Interceptor = stack.TryHandle } : n).ToArray(),
                };
            }
            IDomainMachine? machine = null;
            SerialOutputFile? serialOutput = _serialOutputPath is { } serialPath ? new SerialOutputFile(serialPath, _console) : null;
            try
            {
                machine = _factory.Create(spec, _console.OutputSink);
                machine.Stopped += OnMachineStopped;
                _console.Input = machine.WriteConsoleInput;
                machine.Start();
            }
            catch (Exception e) when (e is not ApiException and not OutOfMemoryException)
            {
                // Firecracker answers a failed InstanceStart with 400 and the reason; nothing stays built.
                _console.Input = null;
                machine?.Dispose();
                serialOutput?.DisposeAsync().AsTask().GetAwaiter().GetResult();
                Log.Error("vmm::builder", $"cannot start the microVM: {e.Message}");
                throw ApiException.BadRequest($"cannot start the microVM: {e.Message}");
            }

            _machine = machine;
            _serialOutput = serialOutput;
            _balloonTargetMib = spec.Balloon?.InitialTargetMib;
            AcceleratorName = machine.AcceleratorName;
            StartedAt = DateTimeOffset.UtcNow;
            if (_state == VmmState.NotStarted)
            {
                _state = VmmState.Running;
            }
        }

        Log.Info("vmm::builder", $"started the microVM with accelerator {AcceleratorName}");
        RaiseStatusChanged();
    }

    /// <summary>
    /// PUT /snapshot/load: instead of InstanceStart, the microVM is built from a snapshot and runs
    /// (<paramref name="resume"/>) or stays paused until PATCH /vm Resumed. The pre-boot
    /// configuration (GET /vm/config) is not replaced by the snapshot's.
    /// </summary>
    public void LoadSnapshot(string statePath, string memoryPath, bool resume)
    {
        lock (_lock)
        {
            RequireNotStarted();
            IDomainMachine? machine = null;
            try
            {
                machine = _factory.Restore(statePath, memoryPath, _console.OutputSink, line => Log.Warning("vmm::devices", line));
                machine.Stopped += OnMachineStopped;
                _console.Input = machine.WriteConsoleInput;
                if (resume)
                {
                    machine.Start();
                }
                else
                {
                    machine.StartPaused();
                }
            }
            catch (Exception e) when (e is not ApiException and not OutOfMemoryException)
            {
                _console.Input = null;
                machine?.Dispose();
                Log.Error("vmm::snapshot", $"cannot load the snapshot: {e.Message}");
                throw ApiException.BadRequest($"cannot load the snapshot: {e.Message}");
            }

            _machine = machine;
            AcceleratorName = machine.AcceleratorName;
            StartedAt = DateTimeOffset.UtcNow;
            _state = resume ? VmmState.Running : VmmState.Paused;
        }

        Log.Info("vmm::snapshot", $"loaded the microVM from {statePath} ({(resume ? "running" : "paused")})");
        RaiseStatusChanged();
    }

    /// <summary>PUT /snapshot/create: the microVM must be paused (PATCH /vm), as in Firecracker.</summary>
    public void CreateSnapshot(string statePath, string memoryPath, bool diff)
    {
        lock (_lock)
        {
            if (_state != VmmState.Paused)
            {
                throw ApiException.BadRequest($"the microVM is {Describe(_state)}; pause it (PATCH /vm Paused) before creating a snapshot");
            }

            try
            {
                SharpVisor.Host.Vmm.SnapshotSummary summary = _machine!.SaveSnapshot(statePath, memoryPath, diff);
                Log.Info("vmm::snapshot", $"snapshot written to {statePath} and {memoryPath}: {summary.MemoryBytesWritten >> 20} MiB of memory in {summary.Duration.TotalMilliseconds:0} ms");
            }
            catch (Exception e) when (e is NotSupportedException or InvalidOperationException or IOException or UnauthorizedAccessException)
            {
                throw ApiException.BadRequest($"cannot create the snapshot: {e.Message}");
            }
        }
    }

    /// <summary>PATCH /vm Paused: idempotent, as in Firecracker.</summary>
    public void Pause() => ChangeRunState(VmmState.Paused);

    /// <summary>PATCH /vm Resumed: idempotent, as in Firecracker.</summary>
    public void Resume() => ChangeRunState(VmmState.Running);

    public void SendCtrlAltDel() => WithRunningMachine("SendCtrlAltDel", m => m.SendCtrlAltDel());

    public void PressPowerButton() => WithRunningMachine("the power button", m => m.PressPowerButton());

    /// <summary>Pulls the plug: the machine stops now (destroy, or a shutdown that timed out).</summary>
    public void PowerOff(string detail)
    {
        IDomainMachine machine;
        lock (_lock)
        {
            if (_state is VmmState.NotStarted or VmmState.Stopped)
            {
                throw ApiException.BadRequest($"the machine is {Describe(_state)}; there is nothing to power off");
            }

            machine = _machine!;
        }

        machine.Stop(detail);
    }

    public void SetBalloonTarget(long amountMib)
    {
        lock (_lock)
        {
            if (_configuration.Balloon is null)
            {
                throw ApiException.BadRequest("no balloon device is configured; PUT /balloon before InstanceStart");
            }

            _configuration.ValidateBalloonTarget(amountMib);
            if (_state == VmmState.NotStarted)
            {
                _configuration.SetBalloon(_configuration.Balloon with { AmountMib = amountMib });
                return;
            }

            RequireLive("the balloon");
            try
            {
                _machine!.SetBalloonTarget(amountMib);
            }
            catch (NotSupportedException e)
            {
                throw ApiException.BadRequest(e.Message);
            }

            _balloonTargetMib = amountMib;
        }
    }

    /// <summary>The running Xen domain's XenStore (the SharpVisor API's /sharpvisor/xenstore); a 400 for any other machine.</summary>
    public DomainXenStore XenStore()
    {
        lock (_lock)
        {
            RequireLive("XenStore");
            return _machine!.XenStore ?? throw ApiException.BadRequest("this machine is not a Xen domain: it has no XenStore (start it with --xen pvh or hvm)");
        }
    }

    /// <summary>
    /// PATCH /drives/{id}: before boot the configuration changes; after, the running drive gets
    /// its new backing file (opened first: a file that cannot be opened changes nothing) and rate limiter.
    /// </summary>
    public void PatchDrive(string id, PartialDrive patch)
    {
        lock (_lock)
        {
            if (_state == VmmState.NotStarted)
            {
                _configuration.PatchDrive(id, patch);
                return;
            }

            Drive current = _configuration.FindDrive(id, patch.DriveId);
            RateLimitConfiguration? limit = VmConfiguration.ToRateLimit(patch.RateLimiter, "rate_limiter");
            if (patch.PathOnHost is { } path)
            {
                VmConfiguration.ValidateDrivePath(path);
            }

            RequireLive("updating a drive");
            try
            {
                _machine!.UpdateDrive(id, patch.PathOnHost, limit);
            }
            catch (Exception e) when (e is ArgumentException or IOException or NotSupportedException)
            {
                throw ApiException.BadRequest($"cannot update drive '{id}': {e.Message}");
            }

            _configuration.RecordDrive(current with
            {
                PathOnHost = patch.PathOnHost ?? current.PathOnHost,
                RateLimiter = patch.RateLimiter ?? current.RateLimiter,
            });
        }
    }

    /// <summary>PATCH /network-interfaces/{id}: new rate limiters, before boot or on the running NIC.</summary>
    public void PatchNetworkInterface(string id, PartialNetworkInterface patch)
    {
        lock (_lock)
        {
            if (_state != VmmState.NotStarted)
            {
                if (patch.IfaceId != id || !_configuration.NetworkInterfaces.Any(n => n.IfaceId == id))
                {
                    // Same checks and messages as before boot.
                    _configuration.PatchNetworkInterface(id, patch);
                }

                RateLimitConfiguration? rx = VmConfiguration.ToRateLimit(patch.RxRateLimiter, "rx_rate_limiter");
                RateLimitConfiguration? tx = VmConfiguration.ToRateLimit(patch.TxRateLimiter, "tx_rate_limiter");
                RequireLive("updating a network interface");
                try
                {
                    _machine!.UpdateNetworkInterface(id, rx, tx);
                }
                catch (Exception e) when (e is ArgumentException or NotSupportedException)
                {
                    throw ApiException.BadRequest($"cannot update network interface '{id}': {e.Message}");
                }
            }

            _configuration.PatchNetworkInterface(id, patch);
        }
    }

    /// <summary>GET /balloon/statistics: only when statistics were enabled (a non-zero interval) before boot.</summary>
    public BalloonStats GetBalloonStatistics()
    {
        IDomainMachine machine;
        lock (_lock)
        {
            Balloon balloon = _configuration.Balloon ?? throw ApiException.BadRequest("no balloon device is configured");
            if (balloon.StatsPollingIntervalS is null or 0)
            {
                throw ApiException.BadRequest("balloon statistics are not enabled (stats_polling_interval_s was 0 at boot)");
            }

            RequireLive("balloon statistics");
            machine = _machine!;
        }

        try
        {
            return BalloonStats.From(machine.ReadBalloon());
        }
        catch (NotSupportedException e)
        {
            throw ApiException.BadRequest(e.Message);
        }
    }

    /// <summary>
    /// PATCH /balloon/statistics: a new interval; after boot statistics can be neither switched
    /// on nor off (as in Firecracker). Everything is checked before anything changes, so a
    /// refused request leaves both the running machine and the configuration as they were.
    /// </summary>
    public void SetBalloonStatisticsInterval(int seconds)
    {
        lock (_lock)
        {
            Balloon balloon = _configuration.Balloon ?? throw ApiException.BadRequest("no balloon device is configured; PUT /balloon before InstanceStart");
            Balloon updated = balloon with { StatsPollingIntervalS = seconds };
            _configuration.ValidateBalloon(updated);
            if (_state != VmmState.NotStarted)
            {
                RequireLive("the balloon statistics interval");
                bool enabled = balloon.StatsPollingIntervalS is > 0;
                if (enabled != seconds > 0)
                {
                    throw ApiException.BadRequest("balloon statistics cannot be enabled or disabled after boot; only their interval can change");
                }

                try
                {
                    _machine!.SetBalloonStatisticsInterval(seconds);
                }
                catch (NotSupportedException e)
                {
                    throw ApiException.BadRequest(e.Message);
                }
            }

            _configuration.SetBalloon(updated);
        }
    }

    /// <summary>PUT /actions FlushMetrics: one line of Firecracker metrics.</summary>
    public void FlushMetrics()
    {
        if (!TryFlushMetrics())
        {
            throw ApiException.BadRequest("metrics are not configured: PUT /metrics (or --metrics-path) first");
        }
    }

    /// <summary>Writes one line of metrics when a metrics file is configured (the periodic flush).</summary>
    public bool TryFlushMetrics()
    {
        HashSet<string> drives;
        HashSet<string> nics;
        lock (_lock)
        {
            drives = _configuration.Drives.Select(d => d.DriveId).ToHashSet();
            nics = _configuration.NetworkInterfaces.Select(n => n.IfaceId).ToHashSet();
        }

        return Metrics.Flush(Identity.InstanceId, ReadCounters(), drives, nics);
    }

    public DomainCounters ReadCounters()
    {
        IDomainMachine? machine;
        lock (_lock)
        {
            machine = _machine;
        }

        DomainCounters counters = machine?.ReadCounters() ?? new DomainCounters();
        return counters with
        {
            Devices = counters.Devices.Append(_console.Counters()).ToList(),
            BalloonTargetMib = counters.BalloonTargetMib ?? _balloonTargetMib,
        };
    }

    public void Dispose()
    {
        IDomainMachine? machine;
        lock (_lock)
        {
            machine = _machine;
        }

        machine?.Dispose();
        _serialOutput?.DisposeAsync().AsTask().GetAwaiter().GetResult();
        Metrics.Dispose();
        Log.Dispose();
    }

    private void ChangeRunState(VmmState target)
    {
        lock (_lock)
        {
            RequireLive(target == VmmState.Paused ? "pausing" : "resuming");
            if (_state == target)
            {
                return;
            }

            if (target == VmmState.Paused)
            {
                _machine!.Pause();
            }
            else
            {
                _machine!.Resume();
            }

            _state = target;
        }

        RaiseStatusChanged();
    }

    private void WithRunningMachine(string what, Action<IDomainMachine> action)
    {
        IDomainMachine machine;
        lock (_lock)
        {
            RequireLive(what);
            if (_state == VmmState.Paused)
            {
                throw ApiException.BadRequest($"the machine is paused; resume it before {what}");
            }

            machine = _machine!;
        }

        try
        {
            action(machine);
        }
        catch (Exception e) when (e is NotSupportedException or InvalidOperationException)
        {
            throw ApiException.BadRequest(e.Message);
        }
    }

    private void OnMachineStopped(DomainStopInfo info)
    {
        lock (_lock)
        {
            _state = VmmState.Stopped;
            _stopInfo = info;
        }

        Log.Info("vmm", $"the microVM stopped: {info.Detail} (exit status {info.ExitStatus})");

        // The state file records how the machine stopped before anyone may act on the stop
        // (the process exits soon after): a daemon must never find a stopped VMM without it.
        RaiseStatusChanged();
        _stopped.TrySetResult(info);
    }

    private void RaiseStatusChanged() => StatusChanged?.Invoke(Status());

    private void RequireNotStarted()
    {
        if (_state != VmmState.NotStarted)
        {
            throw ApiException.BadRequest("The requested operation is not supported after starting the microVM.");
        }
    }

    private void RequireLive(string what)
    {
        if (_state == VmmState.NotStarted)
        {
            throw ApiException.BadRequest($"The requested operation ({what}) is not supported before starting the microVM.");
        }

        if (_state == VmmState.Stopped)
        {
            throw ApiException.BadRequest($"the machine has stopped; {what} is not possible");
        }
    }

    private static string Describe(VmmState state) => state switch
    {
        VmmState.NotStarted => "not started",
        VmmState.Stopped => "stopped",
        _ => state.ToString().ToLowerInvariant(),
    };
}
