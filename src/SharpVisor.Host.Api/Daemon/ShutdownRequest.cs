namespace SharpVisor.Host.Daemon;

/// <summary>The body of POST /domains/{domain}/shutdown: how long the guest gets to power off (the timeouts of /reboot too).</summary>
public sealed record ShutdownRequest
{
    public const int DefaultTimeoutSeconds = 30;
    public const int MaxTimeoutSeconds = 3600;

    public int? TimeoutS { get; init; }
}
