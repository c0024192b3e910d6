namespace SharpVisor.Host.Daemon;

/// <summary>One running per-domain VMM as the daemon sees it: its pid, a task that completes when it exits, and a way to kill it.</summary>
public abstract class VmmHandle
{
    public abstract int Pid { get; }

    /// <summary>The process start time (/proc clock ticks), to tell it from a later process with the same pid.</summary>
    public abstract long? StartTicks { get; }

    public abstract Task Exited { get; }

    /// <summary>SIGKILL: the VMM ends at once, whatever the guest is doing.</summary>
    public abstract void Kill();
}
