namespace SharpVisor.Host.Firecracker;

/// <summary>
/// The per-domain VMM's status: served at GET /sharpvisor/status and written to the state
/// file in its runtime directory, where a restarted daemon finds it.
/// </summary>
public sealed record VmmStatus
{
    public required int Pid { get; init; }

    public required int DomainId { get; init; }

    public required string Name { get; init; }

    public required VmmState State { get; init; }

    public required string Accelerator { get; init; }

    public DateTimeOffset? StartedAt { get; init; }

    public int VcpuCount { get; init; }

    public long MemSizeMib { get; init; }

    public VmmStopStatus? Stop { get; init; }
}
