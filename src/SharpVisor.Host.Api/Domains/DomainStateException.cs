namespace SharpVisor.Host.Domains;

/// <summary>An operation or transition the domain's current state does not allow.</summary>
public sealed class DomainStateException : Exception
{
    public DomainStateException(string message)
        : base(message)
    {
    }
}
