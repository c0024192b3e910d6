namespace SharpVisor.Host.Daemon;

/// <summary>A VMM refused a request (StatusCode 4xx/5xx) or could not be reached (StatusCode 0).</summary>
public sealed class VmmRequestException : Exception
{
    public VmmRequestException(int statusCode, string message)
        : base(message)
    {
        StatusCode = statusCode;
    }

    public int StatusCode { get; }

    public bool IsUnreachable => StatusCode == 0;
}
