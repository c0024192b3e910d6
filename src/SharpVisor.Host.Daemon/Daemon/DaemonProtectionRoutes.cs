using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using SharpVisor.Host.Firecracker;
using SharpVisor.Host.Http;

namespace SharpVisor.Host.Daemon;

/// <summary>
/// The daemon's kernel-protection routes, each through the domain's VMM (docs/security.md):
/// GET /domains/{domain}/protection (status and recent violations), PUT /domains/{domain}/protection
/// {"policy"} (raise; lowering refused), GET /domains/{domain}/attestation?nonce=HEX (a quote),
/// and the event streams GET /domains/{domain}/events and GET /events (every protected running
/// domain): the VMMs' violation events as JSON lines, each with its domain's name and id.
/// </summary>
public static class DaemonProtectionRoutes
{
    // The lines are JSON for programs, not HTML: "+" in a time stays "+".
    private static readonly JsonSerializerOptions s_lineOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static void Map(IEndpointRouteBuilder routes, DomainRegistry registry)
    {
        ControlJsonContext control = ControlJsonContext.Default;
        routes.MapGet("/domains/{domain}/protection", (string domain) => ApiResults.GuardAsync(async () =>
            Results.Json(await registry.Find(domain).ReadProtectionAsync(), control.ProtectionStatus)));
        routes.MapPut("/domains/{domain}/protection", (HttpRequest request, string domain) => ApiResults.GuardAsync(async () =>
        {
            Domain d = registry.Find(domain);
            ProtectionConfiguration body = await JsonBody.ReadAsync(request, control.ProtectionConfiguration);
            await d.RaiseProtectionAsync(body.Policy);
            return Results.Json(await d.ReadProtectionAsync(), control.ProtectionStatus);
        }));
        routes.MapGet("/domains/{domain}/attestation", (string domain, string? nonce) => ApiResults.GuardAsync(async () =>
        {
            if (nonce is null || !SharpVisor.Security.KernelProtector.IsValidNonce(nonce))
            {
                throw ApiException.BadRequest("nonce is required: 1 to 64 bytes in hex (?nonce=HEX)");
            }

            return Results.Text(await registry.Find(domain).AttestAsync(nonce), "application/json");
        }));
        routes.MapGet("/domains/{domain}/events", async (HttpContext context, string domain) =>
        {
            Domain d;
            try
            {
                d = registry.Find(domain);
            }
            catch (ApiException e)
            {
                await ApiResults.Fault(e.StatusCode, e.Message).ExecuteAsync(context);
                return;
            }

            await RelayEventsAsync(context, [d], single: true);
        });
        routes.MapGet("/events", (HttpContext context) => RelayEventsAsync(context, registry.List(), single: false));
    }

    /// <summary>
    /// Follows each domain's VMM event stream and writes its lines, tagged with the domain, as they
    /// come, until the client goes away or every stream ended (its VMM stopped). One domain: its
    /// VMM's refusal (unprotected, not running) is the answer; several: those domains are left out.
    /// </summary>
    private static async Task RelayEventsAsync(HttpContext context, IReadOnlyList<Domain> domains, bool single)
    {
        CancellationToken gone = context.RequestAborted;
        var streams = new List<(Domain Domain, HttpClient Client, HttpResponseMessage Response)>();
        try
        {
            foreach (Domain d in domains)
            {
                HttpClient client = UnixSocketHttp.CreateClient(d.Paths.ApiSocket, Timeout.InfiniteTimeSpan, pooled: false);
                HttpResponseMessage response;
                try
                {
                    response = await client.GetAsync(VmmPaths.Events, HttpCompletionOption.ResponseHeadersRead, gone);
                }
                catch (HttpRequestException e)
                {
                    client.Dispose();
                    if (single)
                    {
                        await ApiResults.Fault(StatusCodes.Status409Conflict, $"domain '{d.Name}' has no running VMM to follow: {e.Message}").ExecuteAsync(context);
                        return;
                    }

                    continue;
                }

                if (!response.IsSuccessStatusCode)
                {
                    string fault = await response.Content.ReadAsStringAsync(gone);
                    response.Dispose();
                    client.Dispose();
                    if (single)
                    {
                        await ApiResults.Fault((int)response.StatusCode, $"domain '{d.Name}': {FaultMessage(fault)}").ExecuteAsync(context);
                        return;
                    }

                    continue;
                }

                streams.Add((d, client, response));
            }

            context.Response.ContentType = VmmPaths.EventsContentType;
            await context.Response.Body.FlushAsync(gone);
            using var writer = new SemaphoreSlim(1, 1);
            await Task.WhenAll(streams.Select(s => CopyLinesAsync(s.Domain, s.Response, context.Response, writer, gone)));
        }
        catch (OperationCanceledException)
        {
            // The client went away.
        }
        finally
        {
            foreach ((_, HttpClient client, HttpResponseMessage response) in streams)
            {
                response.Dispose();
                client.Dispose();
            }
        }
    }

    private static async Task CopyLinesAsync(Domain domain, HttpResponseMessage from, HttpResponse to, SemaphoreSlim writer, CancellationToken gone)
    {
        try
        {
            using var reader = new StreamReader(await from.Content.ReadAsStreamAsync(gone));
            while (await reader.ReadLineAsync(gone) is { } line)
            {
                if (Tag(line, domain) is not { } tagged)
                {
                    continue;
                }

                await writer.WaitAsync(gone);
                try
                {
                    await to.WriteAsync(tagged + "\n", gone);
                    await to.Body.FlushAsync(gone);
                }
                finally
                {
                    writer.Release();
                }
            }
        }
        catch (Exception e) when (e is IOException or HttpRequestException)
        {
            // That VMM went away: its stream ends, the others go on.
        }
    }

    /// <summary>The VMM's event line with the domain's name and id first; null for a line that is not a JSON object.</summary>
    private static string? Tag(string line, Domain domain)
    {
        try
        {
            if (JsonNode.Parse(line) is not JsonObject e)
            {
                return null;
            }

            var tagged = new JsonObject { ["domain"] = domain.Name, ["id"] = domain.Id };
            foreach ((string key, JsonNode? value) in e.ToArray())
            {
                e.Remove(key);
                tagged[key] = value;
            }

            return tagged.ToJsonString(s_lineOptions);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static string FaultMessage(string body)
    {
        try
        {
            using JsonDocument document = JsonDocument.Parse(body);
            return document.RootElement.GetProperty("fault_message").GetString() ?? body;
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            return body;
        }
    }
}
