using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using SharpVisor.Host.Firecracker;

namespace SharpVisor.Host.Http;

/// <summary>An answer of the lean API server: a status and, unless 204, a JSON body.</summary>
public sealed class ApiResponse
{
    public const string JsonContentType = "application/json; charset=utf-8";

    private static readonly byte[] s_empty = [];

    private ApiResponse(int statusCode, byte[] body, string? contentType)
    {
        StatusCode = statusCode;
        Body = body;
        ContentType = contentType;
    }

    public int StatusCode { get; }

    public byte[] Body { get; }

    public string? ContentType { get; }

    public static ApiResponse NoContent() => new(204, s_empty, null);

    public static ApiResponse Json<T>(T value, JsonTypeInfo<T> typeInfo, int statusCode = 200) =>
        new(statusCode, JsonSerializer.SerializeToUtf8Bytes(value, typeInfo), JsonContentType);

    /// <summary>A body that is JSON already (the MMDS data store's).</summary>
    public static ApiResponse RawJson(string json) => new(200, System.Text.Encoding.UTF8.GetBytes(json), JsonContentType);

    public static ApiResponse Fault(int statusCode, string message) =>
        Json(new ApiError { FaultMessage = message }, FirecrackerJsonContext.Default.ApiError, statusCode);
}
