namespace SharpVisor.Host.Migration;

/// <summary>A completed migration's figures: rounds, pages and bytes sent, total time and downtime (paused until the destination was ready).</summary>
public sealed record MigrationResult(int Rounds, long PagesSent, long BytesSent, TimeSpan Total, TimeSpan Downtime);
