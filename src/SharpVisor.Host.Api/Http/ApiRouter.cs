using SharpVisor.Host.Domains;

namespace SharpVisor.Host.Http;

/// <summary>
/// The lean server's route table: METHOD + pattern ("/drives/{drive_id}") → handler. A path
/// matches a pattern segment by segment; {name} takes one non-empty segment; the pattern with
/// the most literal segments wins. <see cref="Dispatch"/> turns refusals into fault answers.
/// </summary>
public sealed class ApiRouter
{
    private readonly List<Route> _routes = [];

    /// <summary>The answer for a request no route matches.</summary>
    public Func<ApiRequest, ApiResponse> Fallback { get; set; } =
        request => ApiResponse.Fault(404, $"no route for {request.Method} {request.Path}");

    /// <summary>Every mapped route as METHOD and pattern, in mapping order (for checks against a spec).</summary>
    public IEnumerable<(string Method, string Pattern)> Routes =>
        _routes.Select(r => (r.Method, "/" + string.Join('/', r.Segments)));

    public void Map(string method, string pattern, Func<ApiRequest, ApiResponse> handler)
    {
        if (!pattern.StartsWith('/'))
        {
            throw new ArgumentException($"route pattern '{pattern}' must start with '/'", nameof(pattern));
        }

        _routes.Add(new Route(method, Segments(pattern), handler));
    }

    public void MapGet(string pattern, Func<ApiRequest, ApiResponse> handler) => Map("GET", pattern, handler);

    public void MapPut(string pattern, Func<ApiRequest, ApiResponse> handler) => Map("PUT", pattern, handler);

    public void MapPatch(string pattern, Func<ApiRequest, ApiResponse> handler) => Map("PATCH", pattern, handler);

    public void MapDelete(string pattern, Func<ApiRequest, ApiResponse> handler) => Map("DELETE", pattern, handler);

    /// <summary>
    /// Runs the matching handler. A refusal (<see cref="ApiException"/>) keeps its status, a
    /// domain in the wrong state is 409, anything unexpected a 500 with its message (never a
    /// stack trace on the wire).
    /// </summary>
    public ApiResponse Dispatch(ApiRequest request)
    {
        try
        {
            return Match(request)(request);
        }
        catch (ApiException e)
        {
            return ApiResponse.Fault(e.StatusCode, e.Message);
        }
        catch (DomainStateException e)
        {
            return ApiResponse.Fault(409, e.Message);
        }
        catch (OperationCanceledException)
        {
            return ApiResponse.Fault(503, "the request was cancelled");
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return ApiResponse.Fault(500, $"{e.GetType().Name}: {e.Message}");
        }
    }

    private Func<ApiRequest, ApiResponse> Match(ApiRequest request)
    {
        string path = request.Path.Length > 1 && request.Path.EndsWith('/') ? request.Path[..^1] : request.Path;
        string[] segments = Segments(path);
        Route? best = null;
        Dictionary<string, string>? bestValues = null;
        foreach (Route route in _routes)
        {
            if (route.Method != request.Method || route.Segments.Length != segments.Length)
            {
                continue;
            }

            Dictionary<string, string>? values = route.Bind(segments);
            if (values is not null && (best is null || route.Literals > best.Literals))
            {
                best = route;
                bestValues = values;
            }
        }

        if (best is null)
        {
            return Fallback;
        }

        request.RouteValues = bestValues!;
        return best.Handler;
    }

    private static string[] Segments(string path) => path == "/" ? [] : path[1..].Split('/');

    private sealed class Route
    {
        public Route(string method, string[] segments, Func<ApiRequest, ApiResponse> handler)
        {
            Method = method;
            Segments = segments;
            Handler = handler;
            Literals = segments.Count(s => !IsParameter(s));
        }

        public string Method { get; }

        public string[] Segments { get; }

        public Func<ApiRequest, ApiResponse> Handler { get; }

        public int Literals { get; }

        public Dictionary<string, string>? Bind(string[] path)
        {
            var values = new Dictionary<string, string>(StringComparer.Ordinal);
            for (int i = 0; i < Segments.Length; i++)
            {
                string pattern = Segments[i];
                if (IsParameter(pattern))
                {
                    if (path[i].Length == 0)
                    {
                        return null;
                    }

                    values[pattern[1..^1]] = path[i];
                }
                else if (!string.Equals(pattern, path[i], StringComparison.Ordinal))
                {
                    return null;
                }
            }

            return values;
        }

        private static bool IsParameter(string segment) => segment.Length > 2 && segment[0] == '{' && segment[^1] == '}';
    }
}
