using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using SharpVisor.Host.Console;
using SharpVisor.Host.Domains;
using SharpVisor.Host.Firecracker;
using SharpVisor.Host.Http;
using SharpVisor.Host.Scheduling;
using SharpVisor.Host.Vmm;
using SharpVisor.Machine;

namespace SharpVisor.Host.Daemon;

/// <summary>
/// One guest domain under the daemon: its VMM process, console, state and settings.
/// Operations on a domain are serialized; each checks the state machine first, so an
/// operation invalid in the current state is refused before anything changes. When the
/// VMM exits on its own the domain becomes shut down (guest powered off), crashed (guest
/// crashed, or the process died) or is restarted (guest rebooted: on_reboot=restart).
/// </summary>
public sealed partial class Domain
{
    private readonly SemaphoreSlim _operation = new(1, 1);
    private readonly DomainEnvironment _environment;
    private readonly Dictionary<int, IReadOnlyList<int>> _vcpuPins = new();
    private VmmConnection? _vmm;

    private Domain(DomainEnvironment environment, int id, string name, string accelerator, FullVmConfiguration config, DateTimeOffset createdAt, DomainStateMachine state, DomainSchedule schedule)
    {
        _environment = environment;
        Id = id;
        Name = name;
        Accelerator = accelerator;
        Config = config;
        CreatedAt = createdAt;
        StateMachine = state;
        Schedule = schedule;
        Paths = environment.Runtime.Domain(id);
        Console = new ConsoleBroadcaster();
        if (state.State is DomainState.Shutdown or DomainState.Crashed)
        {
            Console.Complete();
        }
    }

    public int Id { get; }

    public string Name { get; }

    /// <summary>The accelerator asked for: kvm, emulator or auto.</summary>
    public string Accelerator { get; }

    /// <summary>The kind of machine: <see cref="DomainTypes.Pc"/>, <see cref="DomainTypes.Pvh"/>, <see cref="DomainTypes.Hvm"/> or <see cref="DomainTypes.Pv"/>.</summary>
    public string Type { get; private init; } = DomainTypes.Pc;

    /// <summary>A driver domain's restarts after its VMM died (the front ends' vbds wait for it meanwhile).</summary>
    public int Restarts { get; private set; }

    /// <summary>The accelerator the VMM actually uses (auto resolved), once it runs.</summary>
    public string? RunningAccelerator { get; private set; }

    public FullVmConfiguration Config { get; }

    // The snapshot the first launch loads instead of booting (sharpvisor restore).
    private string? _restoreFrom;
    private string? _restoreMemoryFrom; // a merged base+diff memory file instead of FILE.mem

    // The Unix socket the first launch receives a live migration on instead of booting.
    private string? _receiveMigrationOn;

    public DateTimeOffset CreatedAt { get; }

    public DomainPaths Paths { get; }

    public DomainStateMachine StateMachine { get; }

    public DomainState State => StateMachine.State;

    /// <summary>The serial console, with a ring of recent output for late attachers.</summary>
    public ConsoleBroadcaster Console { get; }

    public DomainSchedule Schedule { get; private set; }

    public int VcpuCount => Config.MachineConfig?.VcpuCount ?? 1;

    public long MemoryMib => Config.MachineConfig?.MemSizeMib ?? 128;

    /// <summary>Writes the domain's files, starts its VMM, configures and boots the guest.</summary>
    public static async Task<Domain> CreateAsync(DomainEnvironment environment, int id, string name, string accelerator, string type, FullVmConfiguration config, string? snapshotPath = null, string? migrationSocket = null, string? snapshotMemoryPath = null)
    {
        var domain = new Domain(environment, id, name, accelerator, config, DateTimeOffset.UtcNow, new DomainStateMachine(name), new DomainSchedule())
        {
            Type = type,
            _restoreFrom = snapshotPath,
            _restoreMemoryFrom = snapshotMemoryPath,
            _receiveMigrationOn = migrationSocket,
        };
        Directory.CreateDirectory(domain.Paths.Directory);
        UnixSocketFiles.RestrictToOwner(domain.Paths.Directory);
        File.WriteAllBytes(domain.Paths.ConfigFile, JsonSerializer.SerializeToUtf8Bytes(config, FirecrackerJsonContext.Default.FullVmConfiguration));
        await domain.LaunchAsync();
        return domain;
    }

    /// <summary>
    /// Rebuilds a domain from its runtime directory after a daemon restart: a VMM that still
    /// runs is adopted (and keeps running undisturbed); one that is gone leaves the domain
    /// shut down or crashed, as its state file tells.
    /// </summary>
    public static async Task<Domain> RestoreAsync(DomainEnvironment environment, DomainRecord record, FullVmConfiguration config)
    {
        DomainPaths paths = environment.Runtime.Domain(record.Id);
        VmmStatus? status = VmmStateFile.TryRead(paths.VmmStateFile);
        VmmHandle? handle = record.Pid is int pid && record.State is "running" or "paused"
            ? environment.Launcher.Adopt(paths, pid, record.PidStartTicks)
            : null;
        if (handle is not null)
        {
            var client = new VmmClient(paths.ApiSocket, TimeSpan.FromSeconds(5));
            try
            {
                VmmStatus live = await client.GetStatusAsync(CancellationToken.None);
                if (live.State is VmmState.Running or VmmState.Paused)
                {
                    DomainState state = live.State == VmmState.Paused ? DomainState.Paused : DomainState.Running;
                    var domain = new Domain(environment, record.Id, record.Name, record.Accelerator, config, record.CreatedAt, new DomainStateMachine(record.Name, state), record.Schedule) { Type = record.Type ?? DomainTypes.Pc };
                    domain.RunningAccelerator = live.Accelerator;
                    var connection = new VmmConnection(handle, client, record.StartedAt ?? DateTimeOffset.UtcNow);
                    connection.Console = await ConnectConsoleAsync(paths, domain.Console);
                    domain._vmm = connection;
                    _ = domain.WatchAsync(connection);
                    return domain;
                }
            }
            catch (Exception e) when (e is VmmRequestException or IOException or System.Net.Sockets.SocketException)
            {
                environment.Log($"domain {record.Name}: VMM pid {handle.Pid} does not answer ({e.Message}); killing it");
                handle.Kill();
            }

            client.Dispose();
        }

        (DomainState final, string detail) = record.State is "shutdown" or "crashed"
            ? (record.State == "shutdown" ? DomainState.Shutdown : DomainState.Crashed, record.Detail ?? "")
            : Classify(status?.Stop, record.Pid, whileDaemonWasDown: true);
        var dead = new Domain(environment, record.Id, record.Name, record.Accelerator, config, record.CreatedAt, new DomainStateMachine(record.Name, final, detail), record.Schedule) { Type = record.Type ?? DomainTypes.Pc };
        dead.SaveRecord();
        return dead;
    }

    public DomainInfo Info()
    {
        VmmConnection? vmm = _vmm;
        return new DomainInfo
        {
            Id = Id,
            Name = Name,
            State = DomainStateMachine.Name(StateMachine.State),
            Vcpus = VcpuCount,
            MemoryMib = MemoryMib,
            Accelerator = RunningAccelerator ?? Accelerator,
            Type = Type,
            UptimeSeconds = vmm is null ? null : Math.Round((DateTimeOffset.UtcNow - vmm.StartedAt).TotalSeconds, 1),
            Pid = vmm?.Handle.Pid,
            Detail = StateMachine.Detail,
            Restarts = Type == DomainTypes.Driver ? Restarts : null,
            Schedule = Schedule,
            CreatedAt = CreatedAt,
        };
    }

    public async Task<DomainStats> StatsAsync(CancellationToken cancel)
    {
        VmmConnection? vmm = _vmm;
        DomainCounters counters = new();
        if (vmm is not null)
        {
            try
            {
                counters = await vmm.Client.GetCountersAsync(cancel);
            }
            catch (VmmRequestException)
            {
                // The VMM is going away; report what /proc still says.
            }
        }

        return new DomainStats
        {
            Id = Id,
            Name = Name,
            State = DomainStateMachine.Name(StateMachine.State),
            CpuSeconds = vmm is null ? null : ProcessInfo.CpuSeconds(vmm.Handle.Pid),
            ResidentBytes = vmm is null ? null : ProcessInfo.ResidentBytes(vmm.Handle.Pid),
            MemoryMib = MemoryMib,
            Vcpus = VcpuCount,
            UptimeSeconds = vmm is null ? null : (DateTimeOffset.UtcNow - vmm.StartedAt).TotalSeconds,
            Exits = counters.Exits,
            Devices = counters.Devices,
            BalloonTargetMib = counters.BalloonTargetMib,
            BalloonActualMib = counters.BalloonActualMib,
            ProtectionViolations = counters.ProtectionViolations,
        };
    }

    /// <summary>The memory file that goes with a snapshot's state file.</summary>
    public static string SnapshotMemoryPath(string statePath) => statePath + ".mem";

    /// <summary>
    /// Writes a snapshot (state file <paramref name="statePath"/>, memory file beside it): a running
    /// domain is paused for it and, unless <paramref name="stayPaused"/>, resumed after.
    /// </summary>
    public Task SnapshotAsync(string statePath, bool diff, bool stayPaused)
    {
        RequireSavable();
        return WithOperationAsync(DomainOperation.Snapshot, vmm => WriteSnapshotAsync(vmm, statePath, diff, stayPaused));
    }

    /// <summary>Refuses, before the domain is touched, what cannot be saved, snapshotted or migrated (a Xen domain's state is not in the format).</summary>
    public void RequireSavable()
    {
        if (DomainTypes.IsXen(Type))
        {
            throw ApiException.BadRequest($"domain '{Name}': {SharpVisor.Host.Vmm.SnapshotConfiguration.XenStateNotSaved(Type)}");
        }
    }

    private async Task WriteSnapshotAsync(VmmConnection vmm, string statePath, bool diff, bool stayPaused)
    {
        bool wasRunning = State == DomainState.Running;
        if (wasRunning)
        {
            await vmm.Client.PauseAsync(CancellationToken.None);
            StateMachine.MoveTo(DomainState.Paused);
        }

        bool written = false;
        try
        {
            await vmm.Client.CreateSnapshotAsync(statePath, SnapshotMemoryPath(statePath), diff, CancellationToken.None);
            written = true;
        }
        finally
        {
            // A save stays paused for the destroy that follows, unless the snapshot failed.
            if (wasRunning && (!stayPaused || !written))
            {
                await vmm.Client.ResumeAsync(CancellationToken.None);
                StateMachine.MoveTo(DomainState.Running);
            }

            SaveRecord();
        }
    }

    public Task PauseAsync() => WithOperationAsync(DomainOperation.Pause, async vmm =>
    {
        await vmm.Client.PauseAsync(CancellationToken.None);
        StateMachine.MoveTo(DomainState.Paused);
        SaveRecord();
    });

    public Task UnpauseAsync() => WithOperationAsync(DomainOperation.Unpause, async vmm =>
    {
        await vmm.Client.ResumeAsync(CancellationToken.None);
        StateMachine.MoveTo(DomainState.Running);
        SaveRecord();
    });

    public Task SetMemoryAsync(long targetMib) => WithOperationAsync(DomainOperation.SetMemory, async vmm =>
    {
        if (targetMib < 0 || targetMib > MemoryMib)
        {
            throw ApiException.BadRequest($"target {targetMib} MiB is out of range (0-{MemoryMib}, the domain's memory)");
        }

        if (DomainTypes.IsXen(Type))
        {
            // xl mem-set: the guest's Xen balloon driver follows memory/target (KiB).
            await vmm.Client.WriteXenStoreAsync("memory/target", (targetMib * 1024).ToString(CultureInfo.InvariantCulture), CancellationToken.None);
            return;
        }

        // The balloon holds what the guest gives back: inflate it by the difference.
        await vmm.Client.SetBalloonAsync(MemoryMib - targetMib, CancellationToken.None);
    });

    /// <summary>xenstore-read (one node) or xenstore-ls (<paramref name="recursive"/>): through the domain's VMM.</summary>
    public async Task<XenStoreListing> ReadXenStoreAsync(string path, bool recursive)
    {
        XenStoreListing? listing = null;
        await WithXenStoreAsync(async vmm => listing = await vmm.Client.ReadXenStoreAsync(path, recursive, CancellationToken.None));
        return listing!;
    }

    /// <summary>xen-channels: the domain's event channels to other domains, through its VMM.</summary>
    public async Task<XenChannelListing> ReadXenChannelsAsync()
    {
        XenChannelListing? listing = null;
        await WithXenStoreAsync(async vmm => listing = await vmm.Client.GetXenChannelsAsync(CancellationToken.None));
        return listing!;
    }

    public Task WriteXenStoreAsync(string path, string value) =>
        WithXenStoreAsync(vmm => vmm.Client.WriteXenStoreAsync(path, value, CancellationToken.None));

    public Task RemoveXenStoreAsync(string path) =>
        WithXenStoreAsync(vmm => vmm.Client.RemoveXenStoreAsync(path, CancellationToken.None));

    private Task WithXenStoreAsync(Func<VmmConnection, Task> action)
    {
        if (!DomainTypes.IsXen(Type))
        {
            throw ApiException.BadRequest($"domain '{Name}' is not a Xen domain (type {Type}): it has no XenStore");
        }

        return WithOperationAsync(DomainOperation.XenStore, action);
    }

    /// <summary>
    /// Presses the ACPI power button and waits up to <paramref name="timeout"/> for the guest to
    /// power off; a guest that does not (or a machine without the button) is then forced off.
    /// </summary>
    public async Task<ShutdownResult> ShutdownAsync(TimeSpan timeout)
    {
        (bool graceful, string detail) = (false, "");
        await WithOperationAsync(DomainOperation.Shutdown, async vmm =>
        {
            (bool stopped, string? refused) = await AskGuestAsync(vmm, timeout, reboot: false);
            if (stopped)
            {
                (graceful, detail) = (true, VmmStateFile.TryRead(Paths.VmmStateFile)?.Stop?.Detail ?? "the guest powered off");
            }
            else
            {
                detail = $"forced off: {NoReaction("the ACPI power button", timeout, refused)}";
                await ForceOffAsync(vmm, detail);
            }

            await EndIncarnationAsync(vmm);
            StateMachine.MoveTo(DomainState.Shutdown, detail);
            Console.Complete();
            SaveRecord();
        });
        return new ShutdownResult { Graceful = graceful, Detail = detail, Domain = Info() };
    }

    /// <summary>
    /// Xen's <c>xl reboot</c>: types Ctrl-Alt-Del on the guest's keyboard and waits up to
    /// <paramref name="timeout"/> for the guest to reset, then boots the domain again in a fresh
    /// VMM (same name and id). A guest that does not reset in time is left running and the
    /// request fails with 409 — unless <paramref name="force"/>, which then resets it by force.
    /// A guest that powers off (or crashes) instead ends shut down (or crashed), as it would
    /// from inside.
    /// </summary>
    public async Task<ShutdownResult> RebootAsync(TimeSpan timeout, bool force)
    {
        (bool graceful, string detail) = (false, "");
        await WithOperationAsync(DomainOperation.Reboot, async vmm =>
        {
            (bool stopped, string? refused) = await AskGuestAsync(vmm, timeout, reboot: true);
            if (stopped)
            {
                VmmStopStatus? stop = VmmStateFile.TryRead(Paths.VmmStateFile)?.Stop;
                await EndIncarnationAsync(vmm);
                if (stop?.Reason == MachineStopReason.Reset)
                {
                    (graceful, detail) = (true, stop.Detail);
                    await RelaunchOrCrashAsync("reboot");
                    return;
                }

                (DomainState state, string why) = Classify(stop, vmm.Handle.Pid);
                (graceful, detail) = (true, $"the guest did not reboot: {why}");
                StateMachine.MoveTo(state, why);
                Console.Complete();
                SaveRecord();
                return;
            }

            string reason = NoReaction("Ctrl-Alt-Del", timeout, refused);
            if (!force)
            {
                throw ApiException.Conflict($"domain '{Name}' did not reboot: {reason}; it is still running (reboot --force resets it)");
            }

            await ForceOffAsync(vmm, $"reset by force: {reason}");
            await EndIncarnationAsync(vmm);
            (graceful, detail) = (false, $"reset by force: {reason}");
            await RelaunchOrCrashAsync("reboot");
        });
        return new ShutdownResult { Graceful = graceful, Detail = detail, Domain = Info() };
    }

    /// <summary>Kills the VMM at once and releases everything; the caller forgets the domain.</summary>
    public async Task DestroyAsync()
    {
        await _operation.WaitAsync();
        try
        {
            StateMachine.Require(DomainOperation.Destroy);
            StateMachine.MoveTo(DomainState.Dying, "destroyed");
            if (_vmm is { } vmm)
            {
                await vmm.KillAsync();
                await EndIncarnationAsync(vmm);
            }

            Console.Complete();
            _environment.Cgroups?.Remove(Id);
            try
            {
                Directory.Delete(Paths.Directory, recursive: true);
            }
            catch (IOException e)
            {
                _environment.Log($"domain {Name}: could not remove {Paths.Directory}: {e.Message}");
            }
        }
        finally
        {
            _operation.Release();
        }
    }

    /// <summary>Pins vCPU <paramref name="vcpu"/> ("all" or a number) to the host CPUs in <paramref name="cpus"/>.</summary>
    public Task PinVcpuAsync(string vcpu, string cpus) => WithOperationAsync(DomainOperation.PinVcpu, vmm =>
    {
        IReadOnlyList<int> vcpus = ParseVcpus(vcpu);
        IReadOnlyList<int> hostCpus = CpuList.Parse(cpus, Environment.ProcessorCount);
        foreach (int index in vcpus)
        {
            ApplyPin(vmm, index, hostCpus);
            _vcpuPins[index] = hostCpus;
        }

        return Task.CompletedTask;
    });

    /// <summary>The host CPUs each vCPU thread may run on now.</summary>
    public IReadOnlyDictionary<int, IReadOnlyList<int>> VcpuAffinity()
    {
        var result = new SortedDictionary<int, IReadOnlyList<int>>();
        if (_vmm is { } vmm)
        {
            for (int index = 0; index < VcpuCount; index++)
            {
                foreach (int tid in ProcessInfo.FindThreads(vmm.Handle.Pid, VcpuThreadName(index)))
                {
                    result[index] = ThreadAffinity.Get(tid);
                }
            }
        }

        return result;
    }

    public Task SetScheduleAsync(ScheduleRequest request) => WithOperationAsync(DomainOperation.Schedule, vmm =>
    {
        CgroupCpuController cgroups = _environment.Cgroups
            ?? throw ApiException.BadRequest($"CPU scheduling is not available: {_environment.CgroupUnavailableReason}");
        var schedule = new DomainSchedule { Weight = request.Weight ?? Schedule.Weight, Cap = request.Cap ?? Schedule.Cap };
        if (schedule.Weight is < 1 or > DomainSchedule.MaxWeight)
        {
            throw ApiException.BadRequest($"weight {schedule.Weight} is out of range (1-{DomainSchedule.MaxWeight})");
        }

        int maxCap = 100 * Environment.ProcessorCount;
        if (schedule.Cap < 0 || schedule.Cap > maxCap)
        {
            throw ApiException.BadRequest($"cap {schedule.Cap} is out of range (0 = none, up to {maxCap} = every host CPU)");
        }

        cgroups.Apply(Id, schedule);
        Schedule = schedule;
        SaveRecord();
        return Task.CompletedTask;
    });

    /// <summary>Leaves the VMM running (daemon shutdown or restart): only our connections close.</summary>
    public async Task DetachAsync()
    {
        await _operation.WaitAsync();
        try
        {
            if (_vmm is { } vmm)
            {
                _vmm = null;
                await vmm.DisposeAsync();
            }
        }
        finally
        {
            _operation.Release();
        }
    }

    public static string VcpuThreadName(int index) => "vcpu" + index.ToString(CultureInfo.InvariantCulture);

    private static (DomainState State, string Detail) Classify(VmmStopStatus? stop, int? pid, bool whileDaemonWasDown = false)
    {
        string when = whileDaemonWasDown ? " while the daemon was not running" : "";
        return stop?.Reason switch
        {
            MachineStopReason.PowerOff or MachineStopReason.DebugExit => (DomainState.Shutdown, stop.Detail),
            MachineStopReason.Crashed => (DomainState.Crashed, stop.Detail),
            MachineStopReason.Reset => (DomainState.Shutdown, $"the guest rebooted{when}"),
            _ => (DomainState.Crashed, $"the VMM process{(pid is null ? "" : $" (pid {pid})")} exited unexpectedly{when}"),
        };
    }

    /// <summary>
    /// A protected domain keeps its measurement log in its runtime directory (`measurement.log`)
    /// unless its policy names one: each boot's VMM appends to it, starting a new chain (seq=1).
    /// </summary>
    private FullVmConfiguration WithMeasurementLog(FullVmConfiguration config)
    {
        if (config.Protection is not { } protection || Paths.MeasurementLog.Contains(',', StringComparison.Ordinal))
        {
            return config;
        }

        try
        {
            if (SharpVisor.Security.ProtectionPolicy.Parse(protection.Policy).MeasurementLogPath is not null)
            {
                return config;
            }
        }
        catch (ArgumentException)
        {
            return config; // the VMM refuses the policy with its own message
        }

        return config with { Protection = protection with { Policy = $"{protection.Policy},measure-log={Paths.MeasurementLog}" } };
    }

    private static async Task<ConsoleSocketClient?> ConnectConsoleAsync(DomainPaths paths, ConsoleBroadcaster console)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            return await ConsoleSocketClient.ConnectAsync(paths.ConsoleSocket, console, timeout.Token);
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or OperationCanceledException)
        {
            return null;
        }
    }

    private async Task LaunchAsync()
    {
        File.Delete(Paths.VmmStateFile);
        VmmHandle handle = _environment.Launcher.Launch(Paths, new VmmIdentity(Name, Id, Accelerator) { Xen = DomainTypes.XenModeOf(Type) });
        var connection = new VmmConnection(handle, new VmmClient(Paths.ApiSocket), DateTimeOffset.UtcNow);
        try
        {
            await connection.Client.WaitUntilReadyAsync(_environment.VmmStartTimeout, handle.Exited, CancellationToken.None);

            // Attach the console before the guest starts, so the ring holds the whole boot log.
            connection.Console = await ConnectConsoleAsync(Paths, Console);
            Console.Reopen();
            if (Interlocked.Exchange(ref _receiveMigrationOn, null) is { } socket)
            {
                // The machine comes over the socket (docs/migration.md); a later reboot boots the configuration.
                await connection.Client.ReceiveMigrationAsync(socket, CancellationToken.None);
            }
            else if (Interlocked.Exchange(ref _restoreFrom, null) is { } snapshot)
            {
                // A restored domain starts from its snapshot once; a later reboot boots the configuration.
                await connection.Client.LoadSnapshotAsync(snapshot, Interlocked.Exchange(ref _restoreMemoryFrom, null) ?? SnapshotMemoryPath(snapshot), CancellationToken.None);
            }
            else
            {
                await connection.Client.ConfigureAndStartAsync(WithMeasurementLog(Config), CancellationToken.None);
            }
        }
        catch (VmmRequestException e)
        {
            await connection.KillAsync();
            await connection.DisposeAsync();
            string message = e.IsUnreachable ? $"{e.Message}{LogTail()}" : e.Message;
            throw new ApiException(e.IsUnreachable ? StatusCodes.Status500InternalServerError : StatusCodes.Status400BadRequest, message);
        }

        _vmm = connection;
        try
        {
            RunningAccelerator = (await connection.Client.GetStatusAsync(CancellationToken.None)).Accelerator;
        }
        catch (VmmRequestException)
        {
            // A guest that ends at once (a test kernel's debug exit) takes its VMM with it; the watcher reports that.
        }

        try
        {
            if (_environment.Cgroups is { } cgroups)
            {
                cgroups.Attach(Id, handle.Pid);
                cgroups.Apply(Id, Schedule);
            }
        }
        catch (ApiException e)
        {
            _environment.Log($"domain {Name}: CPU scheduling not applied: {e.Message}");
        }

        foreach ((int index, IReadOnlyList<int> cpus) in _vcpuPins)
        {
            try
            {
                ApplyPin(connection, index, cpus);
            }
            catch (ApiException e)
            {
                _environment.Log($"domain {Name}: vCPU {index} pin not applied again: {e.Message}");
            }
        }

        SaveRecord();
        _ = WatchAsync(connection);
    }

    private async Task RelaunchOrCrashAsync(string why)
    {
        try
        {
            await LaunchAsync();
            StateMachine.TryMoveTo(DomainState.Running, null, out _);
        }
        catch (ApiException e)
        {
            StateMachine.MoveTo(DomainState.Crashed, $"{why} failed: {e.Message}");
            Console.Complete();
            SaveRecord();
        }
    }

    /// <summary>Waits for the VMM to exit on its own, then turns its end into the domain's state.</summary>
    private async Task WatchAsync(VmmConnection vmm)
    {
        await vmm.Handle.Exited;

        // Let the console drain what the guest printed last.
        if (vmm.Console is { } console)
        {
            await Task.WhenAny(console.Completion, Task.Delay(TimeSpan.FromSeconds(1)));
        }

        await _operation.WaitAsync();
        try
        {
            if (!ReferenceEquals(_vmm, vmm) || StateMachine.State is not (DomainState.Running or DomainState.Paused))
            {
                return;
            }

            VmmStopStatus? stop = VmmStateFile.TryRead(Paths.VmmStateFile)?.Stop;
            await EndIncarnationAsync(vmm);
            if (Type == DomainTypes.Driver)
            {
                // Its front ends keep their rings and wait: the new incarnation takes them over (docs/xen.md, "Driver domains").
                Restarts++;
                _environment.Log($"domain {Name}: the driver domain ended ({Classify(stop, vmm.Handle.Pid).Detail}); restart {Restarts}");
                await RelaunchOrCrashAsync("restart of the driver domain");
                return;
            }

            if (stop?.Reason == MachineStopReason.Reset)
            {
                _environment.Log($"domain {Name}: the guest rebooted; starting it again");
                await RelaunchOrCrashAsync("restart after the guest rebooted");
                return;
            }

            (DomainState state, string detail) = Classify(stop, vmm.Handle.Pid);
            _environment.Log($"domain {Name}: {DomainStateMachine.Name(state)}: {detail}");
            StateMachine.TryMoveTo(state, detail, out _);
            Console.Complete();
            SaveRecord();
        }
        catch (Exception e)
        {
            _environment.Log($"domain {Name}: handling the VMM's exit failed: {e.Message}");
        }
        finally
        {
            _operation.Release();
        }
    }

    /// <summary>
    /// Presses the power button (or types Ctrl-Alt-Del) and waits for the VMM to exit. Says
    /// whether it did, or why the VMM refused the request.
    /// </summary>
    private static async Task<(bool Stopped, string? Refused)> AskGuestAsync(VmmConnection vmm, TimeSpan timeout, bool reboot)
    {
        try
        {
            if (reboot)
            {
                await vmm.Client.SendCtrlAltDelAsync(CancellationToken.None);
            }
            else
            {
                await vmm.Client.PressPowerButtonAsync(CancellationToken.None);
            }
        }
        catch (VmmRequestException e) when (!e.IsUnreachable)
        {
            return (false, e.Message);
        }

        return (await vmm.WaitForExitAsync(timeout), null);
    }

    private static string NoReaction(string what, TimeSpan timeout, string? refused) => refused is null
        ? $"the guest did not react to {what} within {timeout.TotalSeconds:0} s"
        : $"{what} is not available ({refused})";

    /// <summary>Pulls the plug on the VMM's machine, and kills the process if even that does not end it.</summary>
    private async Task ForceOffAsync(VmmConnection vmm, string detail)
    {
        try
        {
            await vmm.Client.PowerOffAsync(detail, CancellationToken.None);
        }
        catch (VmmRequestException)
        {
            // Already stopping, or gone: the kill below settles it.
        }

        if (!await vmm.WaitForExitAsync(_environment.ForcedStopTimeout))
        {
            await vmm.KillAsync();
        }
    }

    private async Task EndIncarnationAsync(VmmConnection vmm)
    {
        if (ReferenceEquals(_vmm, vmm))
        {
            _vmm = null;
        }

        await vmm.DisposeAsync();
    }

    private async Task WithOperationAsync(DomainOperation operation, Func<VmmConnection, Task> action)
    {
        await _operation.WaitAsync();
        try
        {
            StateMachine.Require(operation);
            VmmConnection vmm = _vmm ?? throw new DomainStateException($"domain '{Name}' has no running VMM");
            try
            {
                await action(vmm);
            }
            catch (VmmRequestException e)
            {
                throw e.IsUnreachable
                    ? ApiException.Conflict($"domain '{Name}': its VMM does not answer (it may have just exited): {e.Message}")
                    : new ApiException(e.StatusCode is >= 400 and < 500 ? e.StatusCode : StatusCodes.Status502BadGateway, $"domain '{Name}': {e.Message}");
            }
        }
        finally
        {
            _operation.Release();
        }
    }

    private IReadOnlyList<int> ParseVcpus(string vcpu)
    {
        if (vcpu == "all")
        {
            return Enumerable.Range(0, VcpuCount).ToList();
        }

        if (!int.TryParse(vcpu, NumberStyles.None, CultureInfo.InvariantCulture, out int index) || index >= VcpuCount)
        {
            throw ApiException.BadRequest($"vCPU '{vcpu}' does not exist (domain '{Name}' has vCPUs 0-{VcpuCount - 1}, or 'all')");
        }

        return [index];
    }

    private void ApplyPin(VmmConnection vmm, int index, IReadOnlyList<int> cpus)
    {
        IReadOnlyList<int> threads = ProcessInfo.FindThreads(vmm.Handle.Pid, VcpuThreadName(index));
        if (threads.Count == 0)
        {
            throw ApiException.Conflict($"domain '{Name}': no thread named {VcpuThreadName(index)} in VMM pid {vmm.Handle.Pid}");
        }

        foreach (int tid in threads)
        {
            try
            {
                ThreadAffinity.Set(tid, cpus);
            }
            catch (SharpVisor.Interop.LinuxException e)
            {
                throw ApiException.BadRequest($"domain '{Name}': cannot pin vCPU {index}: {e.Message}");
            }
        }
    }

    private string LogTail()
    {
        // Only the end of the file is read: the log is the guest's to fill, up to its cap.
        const int TailBytes = 16 * 1024;
        try
        {
            using var file = new FileStream(Paths.LogFile, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            long start = Math.Max(0, file.Length - TailBytes);
            file.Position = start;
            byte[] buffer = new byte[(int)(file.Length - start)];
            file.ReadExactly(buffer);
            string[] lines = System.Text.Encoding.UTF8.GetString(buffer).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            if (start > 0 && lines.Length > 0)
            {
                lines = lines[1..]; // the first line is cut
            }

            return lines.Length == 0 ? "" : "; VMM log: " + string.Join(" | ", lines.TakeLast(5));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "";
        }
    }

    private void SaveRecord()
    {
        VmmConnection? vmm = _vmm;
        var record = new DomainRecord
        {
            Id = Id,
            Name = Name,
            Accelerator = Accelerator,
            Type = Type,
            CreatedAt = CreatedAt,
            Pid = vmm?.Handle.Pid,
            PidStartTicks = vmm?.Handle.StartTicks,
            StartedAt = vmm?.StartedAt,
            State = DomainStateMachine.Name(StateMachine.State),
            Detail = StateMachine.Detail,
            Schedule = Schedule,
        };
        string temporary = Paths.RecordFile + ".tmp";
        File.WriteAllBytes(temporary, JsonSerializer.SerializeToUtf8Bytes(record, DaemonJsonContext.Default.DomainRecord));
        File.Move(temporary, Paths.RecordFile, overwrite: true);
    }
}
