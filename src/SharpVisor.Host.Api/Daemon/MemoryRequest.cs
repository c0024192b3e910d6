namespace SharpVisor.Host.Daemon;

/// <summary>The body of PUT /domains/{domain}/memory (`mem-set`): the memory the guest should keep, in MiB.</summary>
public sealed record MemoryRequest
{
    public required long TargetMib { get; init; }
}
