using SharpVisor.Host.Firecracker;

namespace SharpVisor.Host.Daemon;

/// <summary>Starts per-domain VMMs, and finds ones started before the daemon restarted.</summary>
public interface IVmmLauncher
{
    /// <summary>Starts a VMM serving its API on <see cref="DomainPaths.ApiSocket"/>; returns at once.</summary>
    VmmHandle Launch(DomainPaths paths, VmmIdentity identity);

    /// <summary>The VMM with this pid and start time, when it still runs; else null.</summary>
    VmmHandle? Adopt(DomainPaths paths, int pid, long? startTicks);
}
