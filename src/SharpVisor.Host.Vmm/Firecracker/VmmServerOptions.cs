namespace SharpVisor.Host.Firecracker;

/// <summary>Where a per-domain VMM listens and what it starts with.</summary>
public sealed record VmmServerOptions
{
    /// <summary>The Firecracker API socket.</summary>
    public required string ApiSocketPath { get; init; }

    /// <summary>The serial console socket; defaults to the API socket's path plus ".console".</summary>
    public string? ConsoleSocketPath { get; init; }

    /// <summary>Where to keep the state file; none when null (a VMM not run by the daemon).</summary>
    public string? StateFilePath { get; init; }

    /// <summary>A Firecracker JSON configuration to apply and start at once, like firecracker --config-file.</summary>
    public string? ConfigFile { get; init; }

    /// <summary>The logger from the command line (--log-path, --level...), applied before the config file's.</summary>
    public LoggerConfiguration? Logger { get; init; }

    /// <summary>The metrics file from the command line (--metrics-path).</summary>
    public MetricsConfiguration? Metrics { get; init; }

    /// <summary>False for firecracker --no-api: no API socket, the config file is the whole configuration.</summary>
    public bool ServeApi { get; init; } = true;

    /// <summary>Also copy the serial console to standard output (where Firecracker writes it).</summary>
    public bool SerialToStandardOutput { get; init; }

    /// <summary>How often metrics are flushed without FlushMetrics (Firecracker: 60 s).</summary>
    public TimeSpan MetricsFlushInterval { get; init; } = TimeSpan.FromSeconds(60);

    public VmmIdentity Identity { get; init; } = VmmIdentity.Anonymous;

    /// <summary>Sees every API request (the Firecracker front end records them for the handover).</summary>
    public IApiRequestObserver? Observer { get; init; }

    /// <summary>Set in the JIT VMM after a handover: the sockets, requests and pending request the front end passed.</summary>
    public VmmHandoverState? Inherited { get; init; }

    public string EffectiveConsoleSocketPath => ConsoleSocketPath ?? ApiSocketPath + ".console";
}
