namespace SharpVisor.Host.Client;

/// <summary>The daemon refused a request (StatusCode 4xx/5xx with its message) or could not be reached (StatusCode 0).</summary>
public sealed class DaemonException : Exception
{
    public DaemonException(int statusCode, string message)
        : base(message)
    {
        StatusCode = statusCode;
    }

    public int StatusCode { get; }
}
