namespace SharpVisor.Host.Domains;

/// <summary>One event channel of a Xen domain whose other end is another domain of the daemon (docs/xen.md, "Inter-domain").</summary>
public sealed record XenChannel
{
    public required int Port { get; init; }

    /// <summary>"interdomain" (bound) or "unbound" (allocated for the remote domain, not bound yet, or its peer gone).</summary>
    public required string State { get; init; }

    public required int RemoteDomain { get; init; }

    /// <summary>The remote port while bound, else 0.</summary>
    public required int RemotePort { get; init; }
}
