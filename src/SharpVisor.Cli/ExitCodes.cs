namespace SharpVisor.Cli;

/// <summary>
/// The VMM's exit statuses. A guest that powers off or resets gives 0; a debug-exit write of v
/// gives (v &lt;&lt; 1) | 1; the rest are ours.
/// </summary>
public static class ExitCodes
{
    public const int Success = 0;

    /// <summary>The guest crashed: triple fault, or the accelerator could not go on.</summary>
    public const int GuestCrashed = 2;

    /// <summary>The run hit --timeout.</summary>
    public const int TimedOut = 124;

    /// <summary>SharpVisor itself failed: bad options, bad images, no /dev/kvm.</summary>
    public const int Error = 125;
}
