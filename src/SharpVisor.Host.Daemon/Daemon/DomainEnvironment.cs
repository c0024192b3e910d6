using SharpVisor.Host.Scheduling;

namespace SharpVisor.Host.Daemon;

/// <summary>What every domain of one daemon shares: the runtime directory, the VMM launcher, the CPU controller, the log.</summary>
public sealed record DomainEnvironment
{
    public required RuntimeDirectory Runtime { get; init; }

    public required IVmmLauncher Launcher { get; init; }

    /// <summary>Null when the host offers no cgroup CPU controller; <see cref="CgroupUnavailableReason"/> says why.</summary>
    public CgroupCpuController? Cgroups { get; init; }

    public string? CgroupUnavailableReason { get; init; }

    /// <summary>How long a new VMM may take to answer on its socket.</summary>
    public TimeSpan VmmStartTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>After a forced power-off, how long before the VMM is killed.</summary>
    public TimeSpan ForcedStopTimeout { get; init; } = TimeSpan.FromSeconds(5);

    public Action<string> Log { get; init; } = message => System.Console.Error.WriteLine($"sharpvisord: {message}");
}
