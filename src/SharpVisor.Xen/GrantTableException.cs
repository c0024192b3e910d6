namespace SharpVisor.Xen;

/// <summary>A back end's grant access was refused: <see cref="Error"/> is the errno name (EACCES, EINVAL); the back end fails the request, not the host.</summary>
public sealed class GrantTableException : Exception
{
    public GrantTableException(string error, string message)
        : base(message)
    {
        Error = error;
    }

    public string Error { get; }
}
