namespace SharpVisor.Host.Migration;

/// <summary>A live migration did not complete; the message is one line for the user. The source machine runs on.</summary>
public sealed class MigrationException : Exception
{
    public MigrationException(string message)
        : base(message)
    {
    }

    public MigrationException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
