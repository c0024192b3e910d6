namespace SharpVisor.Xen;

/// <summary>
/// A hypercall failed with a Xen errno: thrown by argument validation deep in a handler and turned
/// into -errno in RAX by the dispatcher. It never leaves the Xen layer.
/// </summary>
public sealed class XenException : Exception
{
    public XenException(int errno, string reason)
        : base(reason)
    {
        Errno = errno;
    }

    public int Errno { get; }
}
