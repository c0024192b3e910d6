namespace SharpVisor.Host.Daemon;

/// <summary>The body of POST /domains/restore: a state file written by save or snapshot (its memory file beside it), the new domain's name, and for a diff the full snapshot it lies on.</summary>
public sealed record RestoreDomainRequest
{
    public required string Path { get; init; }

    public string? Name { get; init; }

    /// <summary>For a diff snapshot: the state file of the full snapshot it was taken after (its memory file beside it).</summary>
    public string? Base { get; init; }
}
