using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Http;

namespace SharpVisor.Host.Http;

/// <summary>
/// Reads a size-limited JSON request body into a model. Every failure — too large, not JSON,
/// an unknown or duplicate field, a missing required field, a wrong type — becomes an
/// <see cref="ApiException"/> with one message, worded as Firecracker's (<see cref="SerdeStyleError"/>).
/// </summary>
public static class JsonBody
{
    /// <summary>Firecracker's limit for API request bodies.</summary>
    public const int DefaultMaxBytes = 51_200;

    public static async Task<T> ReadAsync<T>(HttpRequest request, JsonTypeInfo<T> typeInfo, int maxBytes = DefaultMaxBytes)
    {
        byte[] body = await ReadBytesAsync(request, maxBytes);
        return Parse(body, typeInfo);
    }

    public static T Parse<T>(ReadOnlySpan<byte> body, JsonTypeInfo<T> typeInfo)
    {
        if (body.IsEmpty)
        {
            throw ApiException.BadRequest("the request needs a JSON body");
        }

        try
        {
            return JsonSerializer.Deserialize(body, typeInfo)
                ?? throw ApiException.BadRequest("the request body is JSON null; an object is needed");
        }
        catch (JsonException e)
        {
            throw ApiException.BadRequest(SerdeStyleError.Describe(e, typeInfo));
        }
    }

    public static async Task<byte[]> ReadBytesAsync(HttpRequest request, int maxBytes)
    {
        if (request.ContentLength > maxBytes)
        {
            throw TooLarge(maxBytes);
        }

        using var buffer = new MemoryStream();
        byte[] chunk = new byte[8192];
        while (true)
        {
            int read = await request.Body.ReadAsync(chunk, request.HttpContext.RequestAborted);
            if (read == 0)
            {
                break;
            }

            if (buffer.Length + read > maxBytes)
            {
                throw TooLarge(maxBytes);
            }

            buffer.Write(chunk, 0, read);
        }

        return buffer.ToArray();
    }

    internal static ApiException TooLarge(int maxBytes) =>
        new(StatusCodes.Status413PayloadTooLarge, $"the request body is larger than the {maxBytes}-byte limit");
}
