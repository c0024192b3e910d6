using System.Runtime.InteropServices;

namespace SharpVisor.Interop;

/// <summary>A failed system call: what was attempted and the errno it returned.</summary>
public sealed class LinuxException : Exception
{
    public LinuxException(string operation, int errno)
        : base($"{operation} failed: {LibC.Strerror(errno)} (errno {errno})")
    {
        Operation = operation;
        Errno = errno;
    }

    public string Operation { get; }

    public int Errno { get; }

    /// <summary>Builds the exception from the errno left by the last P/Invoke.</summary>
    public static LinuxException FromLastError(string operation) => new(operation, Marshal.GetLastPInvokeError());

    public static void ThrowIfFailed(int result, string operation)
    {
        if (result < 0)
        {
            throw FromLastError(operation);
        }
    }
}
