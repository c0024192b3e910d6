namespace SharpVisor.Host.Daemon;

/// <summary>
/// The body of POST /domains/{domain}/reboot: how long the guest gets to reset after
/// Ctrl-Alt-Del, and whether to reset it by force when it does not (otherwise the reboot fails
/// and the guest keeps running).
/// </summary>
public sealed record RebootRequest
{
    public int? TimeoutS { get; init; }

    public bool? Force { get; init; }
}
