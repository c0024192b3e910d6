using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using SharpVisor.Host.Firecracker;

namespace SharpVisor.Host.Http;

/// <summary>
/// An answer of the lean API server: a status and, unless 204, a body — JSON or text, or a body
/// written as it is produced (<see cref="Streamed"/>: progress lines of a long operation).
/// </summary>
public sealed class ApiResponse
{
    public const string JsonContentType = "application/json; charset=utf-8";

    private static readonly byte[] s_empty = [];

    private ApiResponse(int statusCode, byte[] body, string? contentType, Func<Stream, CancellationToken, Task>? writeBody = null)
    {
        StatusCode = statusCode;
        Body = body;
        ContentType = contentType;
        WriteBody = writeBody;
    }

    public int StatusCode { get; }

    public byte[] Body { get; }

    public string? ContentType { get; }

    /// <summary>When set, the body is written by this as it is produced, and the connection closes after it.</summary>
    public Func<Stream, CancellationToken, Task>? WriteBody { get; }

    public static ApiResponse NoContent() => new(204, s_empty, null);

    public static ApiResponse Json<T>(T value, JsonTypeInfo<T> typeInfo, int statusCode = 200) =>
        new(statusCode, JsonSerializer.SerializeToUtf8Bytes(value, typeInfo), JsonContentType);

    /// <summary>A body that is JSON already (the MMDS data store's).</summary>
    public static ApiResponse RawJson(string json) => new(200, System.Text.Encoding.UTF8.GetBytes(json), JsonContentType);

    /// <summary>A body already in its final form (e.g. a signed quote, whose bytes must not be re-serialized).</summary>
    public static ApiResponse Text(string text, string contentType, int statusCode = 200) =>
        new(statusCode, System.Text.Encoding.UTF8.GetBytes(text), contentType);

    /// <summary>A 200 whose body <paramref name="writeBody"/> writes while the client reads it; no length is sent and the connection closes at its end.</summary>
    public static ApiResponse Streamed(string contentType, Func<Stream, CancellationToken, Task> writeBody) =>
        new(200, s_empty, contentType, writeBody);

    public static ApiResponse Fault(int statusCode, string message) =>
        Json(new ApiError { FaultMessage = message }, FirecrackerJsonContext.Default.ApiError, statusCode);
}
