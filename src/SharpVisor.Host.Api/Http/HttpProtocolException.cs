namespace SharpVisor.Host.Http;

/// <summary>
/// A request the lean server cannot read (malformed, too large, unsupported framing). It is
/// answered with <see cref="StatusCode"/> and the connection is closed: after bad framing the
/// next request's start is unknown.
/// </summary>
public sealed class HttpProtocolException : Exception
{
    public HttpProtocolException(int statusCode, string message)
        : base(message)
    {
        StatusCode = statusCode;
    }

    public int StatusCode { get; }
}
