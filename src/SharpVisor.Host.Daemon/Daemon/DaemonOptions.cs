namespace SharpVisor.Host.Daemon;

/// <summary>How a daemon runs: where, how it starts VMMs, and which cgroup it uses for scheduling.</summary>
public sealed record DaemonOptions
{
    public required RuntimeDirectory Runtime { get; init; }

    public required IVmmLauncher Launcher { get; init; }

    /// <summary>The cgroup (under the CPU controller's mount) holding one group per domain; null disables scheduling.</summary>
    public string? CgroupName { get; init; } = "sharpvisor";

    public TimeSpan VmmStartTimeout { get; init; } = TimeSpan.FromSeconds(30);

    public Action<string>? Log { get; init; }

    /// <summary>Where incoming live migrations are accepted ([ADDR:]PORT; docs/migration.md); null: none.</summary>
    public string? MigrationListen { get; init; }
}
