using System.Net.WebSockets;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using SharpVisor.Host.Console;
using SharpVisor.Host.Domains;
using SharpVisor.Host.Firecracker;
using SharpVisor.Host.Http;

namespace SharpVisor.Host.Daemon;

/// <summary>
/// The daemon's REST API, the toolstack's verbs: create, list, pause, unpause, shutdown,
/// reboot, destroy, console, mem-set, vcpu-pin, sched, stats, and Prometheus /metrics.
/// Refusals are 4xx with {"fault_message": ...}: 400 bad input, 404 no such domain,
/// 409 not possible in the domain's state (or a name already taken), 413 body too large.
/// </summary>
public static class DaemonApi
{
    public const int MaxCreateBodyBytes = 256 * 1024;

    public static void Map(IEndpointRouteBuilder routes, DomainRegistry registry)
    {
        DaemonJsonContext json = DaemonJsonContext.Default;
        ControlJsonContext control = ControlJsonContext.Default;

        routes.MapGet("/domains", () => Guard(() => Results.Json(registry.List().Select(d => d.Info()).ToList(), json.ListDomainInfo)));

        routes.MapPost("/domains", (HttpRequest request) => GuardAsync(async () =>
        {
            CreateDomainRequest body = await JsonBody.ReadAsync(request, json.CreateDomainRequest, MaxCreateBodyBytes);
            Domain domain = await registry.CreateAsync(body);
            return Results.Json(domain.Info(), json.DomainInfo, statusCode: StatusCodes.Status201Created);
        }));

        Migration.DaemonMigrationRoutes.Map(routes, registry);

        // Snapshots (docs/snapshot.md): the memory file is the state file's path + ".mem".
        routes.MapPost("/domains/restore", (HttpRequest request) => GuardAsync(async () =>
        {
            RestoreDomainRequest body = await JsonBody.ReadAsync(request, json.RestoreDomainRequest);
            Domain domain = await registry.RestoreFromSnapshotAsync(body);
            return Results.Json(domain.Info(), json.DomainInfo, statusCode: StatusCodes.Status201Created);
        }));

        routes.MapPost("/domains/{domain}/save", (HttpRequest request, string domain) => GuardAsync(async () =>
        {
            SnapshotRequest body = await JsonBody.ReadAsync(request, json.SnapshotRequest);
            await registry.SaveAsync(registry.Find(domain), System.IO.Path.GetFullPath(body.Path), body.Keep);
            return ApiResults.NoContent();
        }));

        routes.MapPost("/domains/{domain}/snapshot", (HttpRequest request, string domain) => GuardAsync(async () =>
        {
            SnapshotRequest body = await JsonBody.ReadAsync(request, json.SnapshotRequest);
            Domain d = registry.Find(domain);
            await d.SnapshotAsync(System.IO.Path.GetFullPath(body.Path), body.Diff, stayPaused: false);
            return Results.Json(d.Info(), json.DomainInfo);
        }));

        routes.MapGet("/domains/{domain}", (string domain) => Guard(() => Results.Json(registry.Find(domain).Info(), json.DomainInfo)));

        routes.MapDelete("/domains/{domain}", (string domain) => GuardAsync(async () =>
        {
            await registry.DestroyAsync(registry.Find(domain));
            return ApiResults.NoContent();
        }));

        routes.MapPost("/domains/{domain}/pause", (string domain) => GuardAsync(async () =>
        {
            Domain d = registry.Find(domain);
            await d.PauseAsync();
            return Results.Json(d.Info(), json.DomainInfo);
        }));

        routes.MapPost("/domains/{domain}/unpause", (string domain) => GuardAsync(async () =>
        {
            Domain d = registry.Find(domain);
            await d.UnpauseAsync();
            return Results.Json(d.Info(), json.DomainInfo);
        }));

        routes.MapPost("/domains/{domain}/shutdown", (HttpRequest request, string domain) => GuardAsync(async () =>
        {
            Domain d = registry.Find(domain);
            ShutdownRequest body = await ReadOptionalBodyAsync(request, json.ShutdownRequest, new ShutdownRequest());
            return Results.Json(await d.ShutdownAsync(CheckedTimeout(body.TimeoutS)), json.ShutdownResult);
        }));

        routes.MapPost("/domains/{domain}/reboot", (HttpRequest request, string domain) => GuardAsync(async () =>
        {
            Domain d = registry.Find(domain);
            RebootRequest body = await ReadOptionalBodyAsync(request, json.RebootRequest, new RebootRequest());
            return Results.Json(await d.RebootAsync(CheckedTimeout(body.TimeoutS), body.Force ?? false), json.ShutdownResult);
        }));

        routes.MapPut("/domains/{domain}/memory", (HttpRequest request, string domain) => GuardAsync(async () =>
        {
            Domain d = registry.Find(domain);
            MemoryRequest body = await JsonBody.ReadAsync(request, json.MemoryRequest);
            await d.SetMemoryAsync(body.TargetMib);
            return Results.Json(d.Info(), json.DomainInfo);
        }));

        routes.MapGet("/domains/{domain}/xenstore", (string domain, string? path, bool? recursive) => GuardAsync(async () =>
            Results.Json(await registry.Find(domain).ReadXenStoreAsync(path ?? "", recursive ?? false), control.XenStoreListing)));

        routes.MapGet("/domains/{domain}/xen-channels", (string domain) => GuardAsync(async () =>
            Results.Json(await registry.Find(domain).ReadXenChannelsAsync(), control.XenChannelListing)));

        routes.MapPut("/domains/{domain}/xenstore", (HttpRequest request, string domain) => GuardAsync(async () =>
        {
            Domain d = registry.Find(domain);
            XenStoreNode body = await JsonBody.ReadAsync(request, control.XenStoreNode);
            await d.WriteXenStoreAsync(body.Path, body.Value);
            return ApiResults.NoContent();
        }));

        routes.MapDelete("/domains/{domain}/xenstore", (string domain, string? path) => GuardAsync(async () =>
        {
            await registry.Find(domain).RemoveXenStoreAsync(path ?? throw ApiException.BadRequest("a XenStore path is required: ?path=..."));
            return ApiResults.NoContent();
        }));

        DaemonProtectionRoutes.Map(routes, registry);

        routes.MapPut("/domains/{domain}/vcpu-pin", (HttpRequest request, string domain) => GuardAsync(async () =>
        {
            Domain d = registry.Find(domain);
            VcpuPinRequest body = await JsonBody.ReadAsync(request, json.VcpuPinRequest);
            await d.PinVcpuAsync(body.Vcpu, body.Cpus);
            return ApiResults.NoContent();
        }));

        routes.MapGet("/domains/{domain}/sched", (string domain) => Guard(() => Results.Json(registry.Find(domain).Schedule, json.DomainSchedule)));

        routes.MapPut("/domains/{domain}/sched", (HttpRequest request, string domain) => GuardAsync(async () =>
        {
            Domain d = registry.Find(domain);
            ScheduleRequest body = await JsonBody.ReadAsync(request, json.ScheduleRequest);
            await d.SetScheduleAsync(body);
            return Results.Json(d.Schedule, json.DomainSchedule);
        }));

        routes.MapGet("/domains/{domain}/stats", (string domain, CancellationToken cancel) => GuardAsync(async () =>
            Results.Json(await registry.Find(domain).StatsAsync(cancel), json.DomainStats)));

        routes.MapGet("/stats", (CancellationToken cancel) => GuardAsync(async () =>
            Results.Json(await CollectStatsAsync(registry, cancel), json.ListDomainStats)));

        routes.MapGet("/metrics", (CancellationToken cancel) => GuardAsync(async () =>
            Results.Text(MetricsFormatter.Format(await CollectStatsAsync(registry, cancel)), MetricsFormatter.ContentType)));

        // A WebSocket carries the console both ways; a plain GET returns the ring's history.
        routes.MapGet("/domains/{domain}/console", async (HttpContext context, string domain) =>
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

            if (!context.WebSockets.IsWebSocketRequest)
            {
                await Results.Bytes(d.Console.History(), "application/octet-stream").ExecuteAsync(context);
                return;
            }

            using WebSocket socket = await context.WebSockets.AcceptWebSocketAsync();
            await ConsoleWebSocket.ServeAsync(socket, d.Console, () => $"domain {d.Name} is {DomainStateMachine.Name(d.State)}", context.RequestAborted);
        });

        routes.MapFallback((HttpContext context) =>
            ApiResults.Fault(StatusCodes.Status404NotFound, $"no such endpoint: {context.Request.Method} {context.Request.Path}"));
    }

    private static async Task<List<DomainStats>> CollectStatsAsync(DomainRegistry registry, CancellationToken cancel)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        timeout.CancelAfter(TimeSpan.FromSeconds(5));
        DomainStats[] stats = await Task.WhenAll(registry.List().Select(d => d.StatsAsync(timeout.Token)));
        return stats.ToList();
    }

    /// <summary>Parses a body that may be left out (then <paramref name="empty"/>).</summary>
    private static async Task<T> ReadOptionalBodyAsync<T>(HttpRequest request, JsonTypeInfo<T> type, T empty)
    {
        byte[] body = await JsonBody.ReadBytesAsync(request, JsonBody.DefaultMaxBytes);
        return body.Length == 0 ? empty : JsonBody.Parse(body, type);
    }

    private static TimeSpan CheckedTimeout(int? timeoutSeconds)
    {
        int seconds = timeoutSeconds ?? ShutdownRequest.DefaultTimeoutSeconds;
        if (seconds is < 0 or > ShutdownRequest.MaxTimeoutSeconds)
        {
            throw ApiException.BadRequest($"timeout_s {seconds} is out of range (0-{ShutdownRequest.MaxTimeoutSeconds})");
        }

        return TimeSpan.FromSeconds(seconds);
    }

    private static Task<IResult> Guard(Func<IResult> handler) => ApiResults.Guard(handler);

    private static Task<IResult> GuardAsync(Func<Task<IResult>> handler) => ApiResults.GuardAsync(handler);
}
