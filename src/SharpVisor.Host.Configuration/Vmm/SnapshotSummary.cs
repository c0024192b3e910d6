namespace SharpVisor.Host.Vmm;

/// <summary>What a snapshot wrote: memory bytes with data, pages in a diff (-1 for a full snapshot), and how long it took.</summary>
public sealed record SnapshotSummary(long MemoryBytesWritten, int DiffPages, TimeSpan Duration);
