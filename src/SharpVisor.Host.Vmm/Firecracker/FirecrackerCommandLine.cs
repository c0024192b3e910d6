using System.Globalization;
using System.Runtime.InteropServices;
using SharpVisor.Host.Domains;
using SharpVisor.Host.Http;

namespace SharpVisor.Host.Firecracker;

/// <summary>
/// Firecracker's command line (and what the VMM does with each flag), shared by the two
/// programs that take it: the NativeAOT front end out/firecracker, which serves the pre-boot API
/// and hands over to the JIT VMM at InstanceStart (<see cref="VmmHandover"/>), and
/// <c>sharpvisor firecracker</c>, the JIT VMM itself. Parsed by
/// <see cref="FirecrackerArgumentParser"/> (Firecracker's rules and refusals, exit code 153).
/// docs/firecracker.md has the same list.
/// </summary>
public static class FirecrackerCommandLine
{
    public const string DefaultApiSocket = "/run/firecracker.socket";
    public const string DefaultInstanceId = "anonymous-instance";

    /// <summary>Firecracker's FcExitCode::ArgParsing.</summary>
    public const int ArgumentParsingExitCode = 153;

    /// <summary>SharpVisor's "refused to start" status (as the sharpvisor command's).</summary>
    public const int ErrorExitCode = 125;

    public static IReadOnlyList<FirecrackerArgument> Arguments { get; } =
    [
        new("api-sock", true, "Path to unix domain socket used by the API (as Firecracker).") { DefaultValue = DefaultApiSocket },
        new("id", true, "MicroVM unique identifier: GET / reports it, log lines and metrics carry it (as Firecracker).") { DefaultValue = DefaultInstanceId },
        new("seccomp-filter", true, "Accepted, checked to exist, and NOT applied: SharpVisor installs no seccomp filter yet.") { Forbids = ["no-seccomp"] },
        new("no-seccomp", false, "Accepted: SharpVisor installs no seccomp filter yet, so this changes nothing.") { Forbids = ["seccomp-filter"] },
        new("start-time-us", true, "Accepted and ignored (the jailer passes it)."),
        new("start-time-cpu-us", true, "Accepted and ignored (the jailer passes it)."),
        new("parent-cpu-time-us", true, "Accepted and ignored (the jailer passes it)."),
        new("config-file", true, "Path to a file that contains the microVM configuration in JSON format: configure and start at once (as Firecracker)."),
        new("metadata", true, "Not supported yet (refused): put the MMDS data with PUT /mmds."),
        new("no-api", false, "Serve no API socket; needs --config-file (as Firecracker).") { Requires = "config-file" },
        new("log-path", true, "Path to an existing fifo or file for the VMM's log lines (as Firecracker)."),
        new("level", true, "Set the logger level: Error, Warning, Info, Debug, Trace, Off (as Firecracker; applies to --log-path)."),
        new("module", true, "Write only log lines whose origin starts with this module (as Firecracker)."),
        new("show-level", false, "Whether or not to output the level in the logs (as Firecracker)."),
        new("show-log-origin", false, "Write each log line's origin: SharpVisor's module name, not a file and line."),
        new("metrics-path", true, "Path to an existing fifo or file for Firecracker-format JSON metrics, written on FlushMetrics (as Firecracker)."),
        new("boot-timer", false, "Whether or not to load boot timer device for logging elapsed time since InstanceStart command: the guest writes 123 to 0xc0000000, an Info line \"Guest-boot-time = ...\" goes to the log (as Firecracker)."),
        new("version", false, "Print the binary version number."),
        new("snapshot-version", false, "Not supported: SharpVisor's snapshots have their own format (docs/snapshot.md)."),
        new("describe-snapshot", true, "Not supported: SharpVisor's snapshots have their own format (docs/snapshot.md)."),
        new("http-api-max-payload-size", true, "Accepted: the API's body limit stays 51200 bytes in SharpVisor.") { DefaultValue = JsonBody.DefaultMaxBytes.ToString(CultureInfo.InvariantCulture) },
        new("mmds-size-limit", true, "Accepted and ignored: the MMDS data store's limit is 51200 bytes."),
        new("enable-pci", false, "Accepted: SharpVisor always attaches its virtio devices over PCI (it has no virtio-mmio transport), with or without this flag."),
        new("accel", true, "SharpVisor: accelerator kvm, emulator or auto.") { DefaultValue = "auto" },
        new("console-sock", true, "SharpVisor: Unix socket for the serial console (default: API socket + .console); the console also goes to standard output, as Firecracker's does."),
    ];

    /// <summary>
    /// Runs a VMM with Firecracker's command line; machines come from <paramref name="factory"/>.
    /// With a <see cref="VmmHandover"/> as the factory (the front end) a config file hands over at once.
    /// </summary>
    public static int Run(IReadOnlyList<string> args, IDomainMachineFactory factory) => Run(args, factory, inherited: null);

    /// <summary>
    /// The JIT VMM's side of the handover (<c>sharpvisor firecracker --handover-fd N</c>): the
    /// front end's command line, sockets, accepted requests and pending InstanceStart, read from the memfd N.
    /// </summary>
    public static int RunHandedOver(string descriptor, IDomainMachineFactory factory)
    {
        VmmHandoverState state;
        try
        {
            state = VmmHandoverState.Read(descriptor);
        }
        catch (Exception e) when (e is IOException or FormatException or System.Text.Json.JsonException or ArgumentException or UnauthorizedAccessException)
        {
            return Fail($"the handover from the Firecracker front end failed: {e.Message}");
        }

        return Run(state.Arguments, factory, state);
    }

    private static int Run(IReadOnlyList<string> args, IDomainMachineFactory factory, VmmHandoverState? inherited)
    {
        var parser = new FirecrackerArgumentParser(Arguments);
        try
        {
            parser.Parse(args);
        }
        catch (FirecrackerArgumentException e)
        {
            // As Firecracker's main: the Display form to its logger (standard output), the Debug form to standard error.
            System.Console.Out.WriteLine($"{LogTime()} [{DefaultInstanceId}:main] Arguments parsing error: {e.Message} \\n\\nFor more information try --help.");
            System.Console.Error.WriteLine($"Error: ParseArguments({e.Variant})");
            System.Console.Out.WriteLine($"{LogTime()} [{DefaultInstanceId}:main] Firecracker exiting with error. exit_code={ArgumentParsingExitCode}");
            return ArgumentParsingExitCode;
        }

        StartupTrace.Mark("command line parsed");
        if (parser.HelpRequested)
        {
            System.Console.Out.WriteLine($"SharpVisor {VmmVersion.Current} as Firecracker v{VmmVersion.FirecrackerApi}\n");
            System.Console.Out.WriteLine(parser.FormattedHelp());
            return 0;
        }

        if (parser.VersionRequested)
        {
            System.Console.Out.WriteLine($"Firecracker v{VmmVersion.FirecrackerApi} (SharpVisor {VmmVersion.Current})\n");
            return 0;
        }

        if (parser.Flag("snapshot-version") || parser.Flag("describe-snapshot"))
        {
            return Fail("--snapshot-version and --describe-snapshot are not supported: SharpVisor's snapshots have their own format (docs/snapshot.md)");
        }

        if (parser.Value("metadata") is not null)
        {
            return Fail("--metadata is not supported yet: put the MMDS data with PUT /mmds");
        }

        string instanceId = parser.Value("id")!;
        if (instanceId.Length is 0 or > 64 || !instanceId.All(c => char.IsAsciiLetterOrDigit(c) || c == '-'))
        {
            return Fail($"--id '{instanceId}' must be 1 to 64 letters, digits or hyphens (as Firecracker's)");
        }

        if (parser.Value("seccomp-filter") is { } filter && !File.Exists(filter))
        {
            return Fail($"--seccomp-filter '{filter}' does not exist");
        }

        string accel = parser.Value("accel")!;
        if (accel is not ("kvm" or "emulator" or "auto"))
        {
            return Fail($"--accel '{accel}' is not one of kvm, emulator, auto");
        }

        string? logFile = parser.Value("log-path");
        string? level = parser.Value("level");
        if (level is not null)
        {
            try
            {
                VmmLog.ParseLevel(level);
            }
            catch (ApiException e)
            {
                return Fail(e.Message);
            }
        }

        if (factory is VmmHandover handover && parser.Value("config-file") is not null)
        {
            // A config file boots at once: the JIT VMM does all of it, with this very command line.
            return handover.ExecWithCommandLine(args);
        }

        LoggerConfiguration? logger = logFile is null && level is null
            ? null
            : new LoggerConfiguration
            {
                LogPath = logFile,
                Level = level,
                ShowLevel = parser.Flag("show-level"),
                ShowLogOrigin = parser.Flag("show-log-origin"),
                Module = parser.Value("module"),
            };

        using var interrupt = new CancellationTokenSource();
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, context =>
        {
            context.Cancel = true;
            interrupt.Cancel();
        });
        var options = new VmmServerOptions
        {
            ApiSocketPath = parser.Value("api-sock")!,
            ServeApi = !parser.Flag("no-api"),
            ConfigFile = parser.Value("config-file"),
            ConsoleSocketPath = parser.Value("console-sock"),
            Logger = logger,
            Metrics = parser.Value("metrics-path") is { } metrics ? new MetricsConfiguration { MetricsPath = metrics } : null,
            SerialToStandardOutput = true,
            Identity = new VmmIdentity(instanceId, 0, accel) { BootTimer = parser.Flag("boot-timer") },
            Observer = factory as IApiRequestObserver,
            Inherited = inherited,
        };
        if (factory is VmmHandover frontEnd)
        {
            frontEnd.CommandLine = [.. args];
        }

        return VmmServer.RunProcessAsync(options, factory, interrupt.Token).GetAwaiter().GetResult();
    }

    /// <summary>One line on standard error and SharpVisor's refusal status, as every sharpvisor command refuses.</summary>
    public static int Fail(string message)
    {
        System.Console.Error.WriteLine($"sharpvisor: error: {message}");
        return ErrorExitCode;
    }

    /// <summary>Firecracker's LocalTime format: local time with nanoseconds.</summary>
    private static string LogTime()
    {
        DateTime now = DateTime.Now;
        return now.ToString("yyyy-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture) + "." + ((now.Ticks % TimeSpan.TicksPerSecond) * 100).ToString("D9", CultureInfo.InvariantCulture);
    }
}
