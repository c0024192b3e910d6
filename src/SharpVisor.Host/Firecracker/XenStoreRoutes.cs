using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Builder;
using SharpVisor.Host.Domains;
using SharpVisor.Host.Http;

namespace SharpVisor.Host.Firecracker;

/// <summary>
/// SharpVisor's XenStore routes on a Xen domain's VMM, for the toolstack (xenstore-ls, -read,
/// -write, -rm through the daemon): GET /sharpvisor/xenstore?path=P[&amp;recursive=true],
/// PUT /sharpvisor/xenstore {"path", "value"}, DELETE /sharpvisor/xenstore?path=P. Paths
/// without a leading '/' are relative to the domain's home, /local/domain/ID.
/// </summary>
public static class XenStoreRoutes
{
    public const string Path = "/sharpvisor/xenstore";

    public static void Map(IEndpointRouteBuilder routes, VmmController vmm)
    {
        ControlJsonContext json = ControlJsonContext.Default;
        routes.MapGet(Path, (string? path, bool? recursive) => ApiResults.Guard(() =>
        {
            DomainXenStore store = vmm.XenStore();
            string node = string.IsNullOrEmpty(path) ? store.HomePath : path;
            IReadOnlyList<XenStoreNode> nodes = recursive == true
                ? store.List(node)
                : [new XenStoreNode { Path = node, Value = store.Read(node) }];
            return Results.Json(new XenStoreListing { Nodes = nodes }, json.XenStoreListing);
        }));
        routes.MapPut(Path, (HttpRequest request) => ApiResults.GuardAsync(async () =>
        {
            XenStoreNode body = await JsonBody.ReadAsync(request, json.XenStoreNode);
            vmm.XenStore().Write(body.Path, body.Value);
            return ApiResults.NoContent();
        }));
        routes.MapDelete(Path, (string? path) => ApiResults.Guard(() =>
        {
            vmm.XenStore().Remove(path ?? throw ApiException.BadRequest("a XenStore path is required: ?path=..."));
            return ApiResults.NoContent();
        }));
    }
}
