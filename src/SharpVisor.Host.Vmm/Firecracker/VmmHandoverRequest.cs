using System.Text.Json.Serialization;
using SharpVisor.Host.Http;

namespace SharpVisor.Host.Firecracker;

/// <summary>One API request the front end accepted before the handover; the JIT VMM replays it through the same route.</summary>
public sealed record VmmHandoverRequest
{
    [JsonPropertyName("method")]
    public required string Method { get; init; }

    [JsonPropertyName("path")]
    public required string Path { get; init; }

    [JsonPropertyName("query")]
    public Dictionary<string, string> Query { get; init; } = [];

    [JsonPropertyName("body")]
    public byte[] Body { get; init; } = [];

    public static VmmHandoverRequest From(ApiRequest request) => new()
    {
        Method = request.Method,
        Path = request.Path,
        Query = request.Query.ToDictionary(q => q.Key, q => q.Value),
        Body = request.Body,
    };

    public ApiRequest ToApiRequest() => new(Method, Path, Query, [], Body);
}
