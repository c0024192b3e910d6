namespace SharpVisor.Host.Firecracker;

/// <summary>The per-domain VMM's own view of its machine.</summary>
public enum VmmState
{
    NotStarted,
    Running,
    Paused,

    /// <summary>The machine stopped (power-off, reset, crash); the process is about to exit.</summary>
    Stopped,
}
