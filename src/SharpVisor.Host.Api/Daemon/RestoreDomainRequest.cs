namespace SharpVisor.Host.Daemon;

/// <summary>The body of POST /domains/restore: a state file written by save or snapshot (its memory file beside it), and the new domain's name.</summary>
public sealed record RestoreDomainRequest
{
    public required string Path { get; init; }

    public string? Name { get; init; }
}
