using System.CommandLine;
using SharpVisor.Host.Firecracker;
using SharpVisor.Host.Http;

namespace SharpVisor.Cli.Commands;

/// <summary>
/// <c>sharpvisor firecracker</c> (and out/firecracker): the per-domain VMM under Firecracker's
/// command line, for orchestrators that launch Firecracker as a binary. Each flag's help says
/// what SharpVisor does with it; docs/firecracker.md has the same list.
/// </summary>
public static class FirecrackerCommand
{
    public const string DefaultApiSocket = "/run/firecracker.socket";
    public const string DefaultInstanceId = "anonymous-instance";

    public static Command Create()
    {
        var apiSock = new Option<string>("--api-sock") { Description = "Unix socket for the Firecracker API (as Firecracker; default /run/firecracker.socket)", DefaultValueFactory = _ => DefaultApiSocket };
        var configFile = new Option<string?>("--config-file") { Description = "Firecracker JSON configuration: configure and start at once (as Firecracker)" };
        var noApi = new Option<bool>("--no-api") { Description = "Serve no API socket; needs --config-file (as Firecracker)" };
        var id = new Option<string>("--id") { Description = "Instance id: GET / reports it, log lines and metrics carry it (as Firecracker)", DefaultValueFactory = _ => DefaultInstanceId };
        var bootTimer = new Option<bool>("--boot-timer") { Description = "Accepted and ignored: SharpVisor has no boot-timer device yet (the guest's boot time is not logged)" };
        var level = new Option<string?>("--level") { Description = "Log level: Error, Warning, Info, Debug, Trace, Off (as Firecracker; applies to --log-path)" };
        var logPath = new Option<string?>("--log-path") { Description = "Existing file or FIFO for the VMM's log lines (as Firecracker)" };
        var showLevel = new Option<bool>("--show-level") { Description = "Write each log line's level (as Firecracker)" };
        var showLogOrigin = new Option<bool>("--show-log-origin") { Description = "Write each log line's origin: SharpVisor's module name, not a file and line" };
        var module = new Option<string?>("--module") { Description = "Write only log lines whose origin starts with this module (as Firecracker)" };
        var metricsPath = new Option<string?>("--metrics-path") { Description = "Existing file or FIFO for Firecracker-format JSON metrics, written on FlushMetrics (as Firecracker)" };
        var enablePci = new Option<bool>("--enable-pci") { Description = "Accepted: SharpVisor always attaches its virtio devices over PCI (it has no virtio-mmio transport), with or without this flag" };
        var seccompFilter = new Option<string?>("--seccomp-filter") { Description = "Accepted, checked to exist, and NOT applied: SharpVisor installs no seccomp filter yet" };
        var noSeccomp = new Option<bool>("--no-seccomp") { Description = "Accepted: SharpVisor installs no seccomp filter yet, so this changes nothing" };
        var startTimeUs = new Option<ulong?>("--start-time-us") { Description = "Accepted and ignored (the jailer passes it)" };
        var startTimeCpuUs = new Option<ulong?>("--start-time-cpu-us") { Description = "Accepted and ignored (the jailer passes it)" };
        var parentCpuTimeUs = new Option<ulong?>("--parent-cpu-time-us") { Description = "Accepted and ignored (the jailer passes it)" };
        var accel = new Option<string>("--accel") { Description = "SharpVisor: accelerator kvm, emulator or auto", DefaultValueFactory = _ => "auto" };
        accel.AcceptOnlyFromAmong("kvm", "emulator", "auto");
        var consoleSock = new Option<string?>("--console-sock") { Description = "SharpVisor: Unix socket for the serial console (default: API socket + .console); the console also goes to standard output, as Firecracker's does" };
        var command = new Command("firecracker", "Run a microVM VMM with Firecracker's command line and REST API (a drop-in for the firecracker binary; see docs/firecracker.md).")
        {
            apiSock, configFile, noApi, id, bootTimer, level, logPath, showLevel, showLogOrigin, module, metricsPath, enablePci,
            seccompFilter, noSeccomp, startTimeUs, startTimeCpuUs, parentCpuTimeUs, accel, consoleSock,
        };
        command.SetAction((result, cancel) =>
        {
            string instanceId = result.GetValue(id)!;
            if (instanceId.Length is 0 or > 64 || !instanceId.All(c => char.IsAsciiLetterOrDigit(c) || c == '-'))
            {
                return Task.FromResult(Toolstack.Fail($"--id '{instanceId}' must be 1 to 64 letters, digits or hyphens (as Firecracker's)"));
            }

            if (result.GetValue(seccompFilter) is { } filter && !File.Exists(filter))
            {
                return Task.FromResult(Toolstack.Fail($"--seccomp-filter '{filter}' does not exist"));
            }

            string? logFile = result.GetValue(logPath);
            LoggerConfiguration? logger = logFile is null && result.GetValue(level) is null
                ? null
                : new LoggerConfiguration
                {
                    LogPath = logFile,
                    Level = result.GetValue(level),
                    ShowLevel = result.GetValue(showLevel),
                    ShowLogOrigin = result.GetValue(showLogOrigin),
                    Module = result.GetValue(module),
                };
            if (result.GetValue(level) is { } text)
            {
                try
                {
                    VmmLog.ParseLevel(text);
                }
                catch (ApiException e)
                {
                    return Task.FromResult(Toolstack.Fail(e.Message));
                }
            }

            string apiSocket = result.GetValue(apiSock)!;
            return VmmCommand.RunServerAsync(
                new VmmServerOptions
                {
                    ApiSocketPath = apiSocket,
                    ServeApi = !result.GetValue(noApi),
                    ConfigFile = result.GetValue(configFile),
                    ConsoleSocketPath = result.GetValue(consoleSock),
                    Logger = logger,
                    Metrics = result.GetValue(metricsPath) is { } metrics ? new MetricsConfiguration { MetricsPath = metrics } : null,
                    SerialToStandardOutput = true,
                    Identity = new VmmIdentity(instanceId, 0, result.GetValue(accel)!),
                },
                cancel);
        });
        return command;
    }
}
