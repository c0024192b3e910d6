using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using SharpVisor.Host.Daemon;
using SharpVisor.Host.Domains;
using SharpVisor.Host.Http;

namespace SharpVisor.Host.Migration;

/// <summary>
/// The daemon's migration route (docs/migration.md): <c>POST /domains/{d}/migrate
/// {"destination": "HOST[:PORT]", "downtime_ms": N}</c> relays the domain's VMM's progress lines
/// as they come; once the last says <c>migrated</c> the source domain is destroyed, otherwise
/// it runs on.
/// </summary>
public static class DaemonMigrationRoutes
{
    public static void Map(IEndpointRouteBuilder routes, DomainRegistry registry)
    {
        routes.MapPost("/domains/{domain}/migrate", async (HttpContext context, string domain) =>
        {
            Domain d;
            Dictionary<string, object> body = new();
            try
            {
                d = registry.Find(domain);
                if (d.State != DomainState.Running)
                {
                    throw ApiException.Conflict($"cannot migrate domain '{d.Name}': it is {DomainStateMachine.Name(d.State)} (only a running domain migrates)");
                }

                d.RequireSavable();

                using JsonDocument document = await JsonDocument.ParseAsync(context.Request.Body);
                foreach (JsonProperty property in document.RootElement.EnumerateObject())
                {
                    body[property.Name] = property.Name switch
                    {
                        "destination" when property.Value.ValueKind == JsonValueKind.String => property.Value.GetString()!,
                        "downtime_ms" when property.Value.TryGetInt32(out int ms) => ms,
                        _ => throw ApiException.BadRequest($"field '{property.Name}' is unknown or of the wrong type"),
                    };
                }
            }
            catch (ApiException e)
            {
                await ApiResults.Fault(e.StatusCode, e.Message).ExecuteAsync(context);
                return;
            }
            catch (JsonException e)
            {
                await ApiResults.Fault(StatusCodes.Status400BadRequest, $"the body is not JSON: {e.Message}").ExecuteAsync(context);
                return;
            }

            context.Response.ContentType = "text/plain; charset=utf-8";
            using HttpClient vmm = UnixSocketHttp.CreateClient(d.Paths.ApiSocket, Timeout.InfiniteTimeSpan, pooled: false);
            string last = await MigrationLines.RelayAsync(vmm, HttpMethod.Put, "/sharpvisor/migration/send", body, async line =>
            {
                await context.Response.WriteAsync(line + "\n");
                await context.Response.Body.FlushAsync();
            }, CancellationToken.None);
            if (last.StartsWith(MigrationLines.Migrated, StringComparison.Ordinal))
            {
                await registry.DestroyAsync(d);
                await context.Response.WriteAsync($"domain {d.Name} destroyed here: it runs on the destination\n");
            }
        });
    }
}
