namespace SharpVisor.Host.Daemon;

/// <summary>One domain's files in the runtime directory: its VMM's sockets, state file, log and the daemon's record.</summary>
public sealed record DomainPaths(string Directory)
{
    public string ApiSocket => Path.Combine(Directory, "api.sock");

    public string ConsoleSocket => Path.Combine(Directory, "console.sock");

    /// <summary>Written by the VMM: its pid and state.</summary>
    public string VmmStateFile => Path.Combine(Directory, "vmm.json");

    /// <summary>Written by the daemon: id, name, accelerator, scheduling, last known state.</summary>
    public string RecordFile => Path.Combine(Directory, "domain.json");

    /// <summary>The domain's Firecracker configuration, as given to create.</summary>
    public string ConfigFile => Path.Combine(Directory, "config.json");

    /// <summary>The VMM process's stdout and stderr.</summary>
    public string LogFile => Path.Combine(Directory, "vmm.log");

    /// <summary>A protected domain's append-only measurement log, unless its policy names another (docs/security.md).</summary>
    public string MeasurementLog => Path.Combine(Directory, "measurement.log");
}
