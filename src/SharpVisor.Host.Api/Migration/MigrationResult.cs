namespace SharpVisor.Host.Migration;

/// <summary>A completed migration's figures: rounds, pages and bytes sent, total time and downtime (paused until the destination was ready), and where the pause went.</summary>
public sealed record MigrationResult(int Rounds, long PagesSent, long BytesSent, TimeSpan Total, TimeSpan Downtime)
{
    public StopAndCopyPhases? Phases { get; init; }
}
