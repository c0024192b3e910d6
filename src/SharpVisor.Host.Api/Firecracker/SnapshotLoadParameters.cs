using System.Text.Json;

namespace SharpVisor.Host.Firecracker;

/// <summary>The body of PUT /snapshot/load (Firecracker's SnapshotLoadParams); every field of the spec is read, the ones SharpVisor lacks are refused.</summary>
public sealed record SnapshotLoadParameters
{
    public required string SnapshotPath { get; init; }

    /// <summary>Deprecated in Firecracker; exactly one of this and <see cref="MemBackend"/>.</summary>
    public string? MemFilePath { get; init; }

    public MemoryBackend? MemBackend { get; init; }

    public bool? EnableDiffSnapshots { get; init; }

    public bool? TrackDirtyPages { get; init; }

    public bool? ResumeVm { get; init; }

    public IReadOnlyList<NetworkOverride>? NetworkOverrides { get; init; }

    public JsonElement? VsockOverride { get; init; }

    public bool? ClockRealtime { get; init; }

    public string? HugePages { get; init; }
}
