namespace SharpVisor.Xen;

/// <summary>A back end's grant access was refused: <see cref="Error"/> is the errno name (EACCES, EINVAL); the back end fails the request, not the host.</summary>
public sealed class GrantTableException : Exception
{
    public GrantTableException(string error, string message, short status = GrantStatus.GeneralError)
        : base(message)
    {
        Error = error;
        Status = status;
    }

    public string Error { get; }

    /// <summary>The GNTST_* status a grant_table_op copy answers for this refusal.</summary>
    public short Status { get; }
}
