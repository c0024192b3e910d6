namespace SharpVisor.Host.Daemon;

/// <summary>
/// The body of POST /domains/{d}/save and /snapshot: the state file's path (the memory file is
/// the same path with ".mem" appended); save destroys the domain unless <see cref="Keep"/>;
/// snapshot keeps it running and may write a <see cref="Diff"/>.
/// </summary>
public sealed record SnapshotRequest
{
    public required string Path { get; init; }

    public bool Keep { get; init; }

    public bool Diff { get; init; }
}
