using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using SharpVisor.Host.Http;

namespace SharpVisor.Host.Firecracker.Mmds;

/// <summary>
/// The MMDS data store and its guest-facing rules, as Firecracker's: a JSON object the API
/// replaces (PUT /mmds), merges into (PATCH /mmds, RFC 7396 merge patch) and reads (GET /mmds),
/// bounded by <see cref="SizeLimit"/> bytes; and the answers a guest gets over HTTP
/// (<see cref="Answer"/>): a string value as text, an object as its keys one per line (objects
/// with a trailing '/'), JSON when the guest accepts only JSON; with V2 only after
/// PUT /latest/api/token and with the token it returned. Thread-safe.
/// </summary>
public sealed class MmdsDataStore
{
    /// <summary>Firecracker's default: the API's payload limit.</summary>
    public const int DefaultSizeLimit = JsonBody.DefaultMaxBytes;

    public const string TokenPath = "/latest/api/token";
    public const string TokenTtlHeader = "X-metadata-token-ttl-seconds";
    public const string TokenHeader = "X-metadata-token";
    public const int MaxTokenTtlSeconds = 21_600;
    public const int MaxTokens = 1024;

    private readonly object _lock = new();
    private readonly Dictionary<string, long> _tokens = new(StringComparer.Ordinal);
    private readonly Func<long> _nowMs;
    private JsonObject _data = new();

    public MmdsDataStore(int sizeLimit = DefaultSizeLimit, Func<long>? nowMs = null)
    {
        SizeLimit = sizeLimit;
        _nowMs = nowMs ?? (() => Environment.TickCount64);
    }

    public int SizeLimit { get; }

    public MmdsVersion Version { get; set; } = MmdsVersion.V1;

    /// <summary>GET /mmds: the whole store as JSON.</summary>
    public string Read()
    {
        lock (_lock)
        {
            return _data.ToJsonString();
        }
    }

    /// <summary>PUT /mmds: replaces the store with <paramref name="json"/>, a JSON object.</summary>
    public void Put(ReadOnlySpan<byte> json)
    {
        JsonObject data = ParseObject(json);
        lock (_lock)
        {
            CheckSize(data);
            _data = data;
        }
    }

    /// <summary>PATCH /mmds: merges <paramref name="json"/> into the store (RFC 7396: null removes a key).</summary>
    public void Patch(ReadOnlySpan<byte> json)
    {
        JsonObject patch = ParseObject(json);
        lock (_lock)
        {
            var merged = (JsonObject)_data.DeepClone();
            Merge(merged, patch);
            CheckSize(merged);
            _data = merged;
        }
    }

    /// <summary>
    /// The answer to one guest request: status, content type and body. <paramref name="header"/>
    /// looks a request header up by name (case-insensitive).
    /// </summary>
    public MmdsAnswer Answer(string method, string path, Func<string, string?> header)
    {
        lock (_lock)
        {
            if (method == "PUT" && path == TokenPath)
            {
                return IssueToken(header(TokenTtlHeader));
            }

            if (method != "GET")
            {
                return MmdsAnswer.Text(405, "Not allowed HTTP method.");
            }

            string? token = header(TokenHeader);
            if (token is not null && !IsValid(token))
            {
                return MmdsAnswer.Text(401, "MMDS token not valid.");
            }

            if (Version == MmdsVersion.V2 && token is null)
            {
                return MmdsAnswer.Text(401, "No MMDS token provided. Use `X-metadata-token` header to specify the session token.");
            }

            JsonNode? node = Find(path);
            if (node is null)
            {
                return MmdsAnswer.Text(404, $"Resource not found: {path}.");
            }

            bool json = header("Accept") is { } accept && accept.Contains("application/json", StringComparison.OrdinalIgnoreCase);
            if (json)
            {
                return new MmdsAnswer(200, "application/json", node.ToJsonString());
            }

            return node switch
            {
                JsonObject obj => MmdsAnswer.Text(200, string.Join('\n', obj.Select(p => p.Value is JsonObject ? p.Key + "/" : p.Key))),
                JsonValue value when value.TryGetValue(out string? text) => MmdsAnswer.Text(200, text),
                _ => MmdsAnswer.Text(200, node.ToJsonString()),
            };
        }
    }

    private MmdsAnswer IssueToken(string? ttlText)
    {
        if (ttlText is null)
        {
            return MmdsAnswer.Text(400, $"Token time to live value not found. Use `{TokenTtlHeader}` header to specify the session token's lifetime.");
        }

        if (!int.TryParse(ttlText, out int ttl) || ttl < 1 || ttl > MaxTokenTtlSeconds)
        {
            return MmdsAnswer.Text(400, $"Invalid time to live value provided for token: {ttlText}. Please provide a value between 1 and {MaxTokenTtlSeconds}.");
        }

        long now = _nowMs();
        foreach (string expired in _tokens.Where(t => t.Value <= now).Select(t => t.Key).ToList())
        {
            _tokens.Remove(expired);
        }

        if (_tokens.Count >= MaxTokens)
        {
            // A guest asking for tokens in a loop cannot grow the VMM's memory.
            _tokens.Remove(_tokens.MinBy(t => t.Value).Key);
        }

        string token = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        _tokens[token] = now + (ttl * 1000L);
        return MmdsAnswer.Text(200, token);
    }

    private bool IsValid(string token) => _tokens.TryGetValue(token, out long expires) && expires > _nowMs();

    private JsonNode? Find(string path)
    {
        JsonNode? node = _data;
        foreach (string segment in path.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            node = node is JsonObject obj && obj.TryGetPropertyValue(segment, out JsonNode? child) ? child : null;
            if (node is null)
            {
                return null;
            }
        }

        return node;
    }

    private void CheckSize(JsonObject data)
    {
        int size = Encoding.UTF8.GetByteCount(data.ToJsonString());
        if (size > SizeLimit)
        {
            throw new ApiException(413, $"The MMDS data store would be {size} bytes, above its {SizeLimit}-byte limit.");
        }
    }

    private static JsonObject ParseObject(ReadOnlySpan<byte> json)
    {
        try
        {
            return JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { MaxDepth = 64 }) as JsonObject
                ?? throw ApiException.BadRequest("the MMDS data must be a JSON object");
        }
        catch (JsonException e)
        {
            throw ApiException.BadRequest($"{SerdeStyleError.Prefix}{e.Message}");
        }
    }

    private static void Merge(JsonObject target, JsonObject patch)
    {
        foreach ((string key, JsonNode? value) in patch.ToList())
        {
            if (value is null)
            {
                target.Remove(key);
            }
            else if (value is JsonObject patchObject && target[key] is JsonObject targetObject)
            {
                Merge(targetObject, patchObject);
            }
            else
            {
                target[key] = value.DeepClone();
            }
        }
    }
}
