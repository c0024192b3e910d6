namespace SharpVisor.Host.Daemon;

/// <summary>How a shutdown or reboot went: whether the guest obeyed or was forced, and the domain afterwards.</summary>
public sealed record ShutdownResult
{
    public required bool Graceful { get; init; }

    public required string Detail { get; init; }

    public required DomainInfo Domain { get; init; }
}
