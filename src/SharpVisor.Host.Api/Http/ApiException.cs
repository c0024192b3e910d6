using Microsoft.AspNetCore.Http;

namespace SharpVisor.Host.Http;

/// <summary>
/// A request the API refuses: an HTTP status (4xx) and one clear message. Thrown before
/// anything changes, so a refused request has no effect.
/// </summary>
public sealed class ApiException : Exception
{
    public ApiException(int statusCode, string message)
        : base(message)
    {
        StatusCode = statusCode;
    }

    public int StatusCode { get; }

    public static ApiException BadRequest(string message) => new(StatusCodes.Status400BadRequest, message);

    public static ApiException NotFound(string message) => new(StatusCodes.Status404NotFound, message);

    public static ApiException Conflict(string message) => new(StatusCodes.Status409Conflict, message);
}
