namespace SharpVisor.Host.Firecracker;

/// <summary>Firecracker's MemoryBackend: a memory file (File) or a userfaultfd handler's socket (Uffd).</summary>
public sealed record MemoryBackend
{
    public required string BackendType { get; init; }

    public required string BackendPath { get; init; }
}
