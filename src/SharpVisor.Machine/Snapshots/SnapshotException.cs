namespace SharpVisor.Machine.Snapshots;

/// <summary>A snapshot that cannot be restored: corrupt, truncated, another version, another CPU. The message is one line.</summary>
public sealed class SnapshotException : Exception
{
    public SnapshotException(string message)
        : base(message)
    {
    }

    public SnapshotException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
