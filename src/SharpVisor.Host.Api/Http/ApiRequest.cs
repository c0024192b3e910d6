using System.Text.Json.Serialization.Metadata;

namespace SharpVisor.Host.Http;

/// <summary>
/// One request as <see cref="HttpRequestReader"/> read it: method, decoded path, query,
/// headers and the whole body (bounded by the reader). Route values are filled by
/// <see cref="ApiRouter"/>.
/// </summary>
public sealed class ApiRequest
{
    public ApiRequest(string method, string path, IReadOnlyDictionary<string, string> query, IReadOnlyList<KeyValuePair<string, string>> headers, byte[] body)
    {
        Method = method;
        Path = path;
        Query = query;
        Headers = headers;
        Body = body;
    }

    public string Method { get; }

    /// <summary>The percent-decoded path, without the query.</summary>
    public string Path { get; }

    public IReadOnlyDictionary<string, string> Query { get; }

    public IReadOnlyList<KeyValuePair<string, string>> Headers { get; }

    public byte[] Body { get; }

    /// <summary>False when the client asked to close the connection after this request.</summary>
    public bool KeepAlive { get; init; } = true;

    /// <summary>The connection the request came on (null for a request not read from a socket).</summary>
    public ApiConnection? Connection { get; init; }

    public IReadOnlyDictionary<string, string> RouteValues { get; internal set; } = new Dictionary<string, string>();

    /// <summary>The value of a {name} segment of the matched route.</summary>
    public string Route(string name) => RouteValues[name];

    /// <summary>The first header of that name (case-insensitive), or null.</summary>
    public string? Header(string name)
    {
        foreach (KeyValuePair<string, string> header in Headers)
        {
            if (string.Equals(header.Key, name, StringComparison.OrdinalIgnoreCase))
            {
                return header.Value;
            }
        }

        return null;
    }

    public string? QueryValue(string name) => Query.TryGetValue(name, out string? value) ? value : null;

    /// <summary>The body as a model, refused as Firecracker refuses it (<see cref="JsonBody"/>).</summary>
    public T ReadJson<T>(JsonTypeInfo<T> typeInfo, int maxBytes = JsonBody.DefaultMaxBytes)
    {
        if (Body.Length > maxBytes)
        {
            throw JsonBody.TooLarge(maxBytes);
        }

        return JsonBody.Parse(Body, typeInfo);
    }
}
