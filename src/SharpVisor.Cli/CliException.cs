namespace SharpVisor.Cli;

/// <summary>A user-facing error: printed as one line, never as a stack trace.</summary>
public sealed class CliException : Exception
{
    public CliException(string message)
        : base(message)
    {
    }
}
