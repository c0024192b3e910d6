namespace SharpVisor.Host.Firecracker;

/// <summary>The body of PUT /snapshot/create (Firecracker's SnapshotCreateParams).</summary>
public sealed record SnapshotCreateParameters
{
    public const string Full = "Full";
    public const string Diff = "Diff";

    public required string SnapshotPath { get; init; }

    public required string MemFilePath { get; init; }

    /// <summary>Full (the default) or Diff: the pages changed since this VMM's previous snapshot.</summary>
    public string? SnapshotType { get; init; }
}
