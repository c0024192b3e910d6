namespace SharpVisor.Xen;

/// <summary>A XenStore request failed; <see cref="Error"/> is the errno name the reply carries ("ENOENT", "EACCES", "EAGAIN", ...).</summary>
public sealed class XenStoreException : Exception
{
    public XenStoreException(string error, string message)
        : base(message)
    {
        Error = error;
    }

    public string Error { get; }
}
