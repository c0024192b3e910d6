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
    public const string Path = VmmPaths.XenStore;

    /// <summary>GET: the domain's event channels to other domains (docs/xen.md, "Inter-domain").</summary>
    public const string ChannelsPath = VmmPaths.XenChannels;

    public static void Map(ApiRouter routes, VmmController vmm)
    {
        ControlJsonContext json = ControlJsonContext.Default;
        routes.MapGet(Path, request =>
        {
            string? path = request.QueryValue("path");
            bool recursive = request.QueryValue("recursive") switch
            {
                null or "false" => false,
                "true" => true,
                string other => throw ApiException.BadRequest($"recursive '{other}' is not true or false"),
            };
            DomainXenStore store = vmm.XenStore();
            string node = string.IsNullOrEmpty(path) ? store.HomePath : path;
            IReadOnlyList<XenStoreNode> nodes = recursive
                ? store.List(node)
                : [new XenStoreNode { Path = node, Value = store.Read(node) }];
            return ApiResponse.Json(new XenStoreListing { Nodes = nodes }, json.XenStoreListing);
        });
        routes.MapPut(Path, request =>
        {
            XenStoreNode body = request.ReadJson(json.XenStoreNode);
            vmm.XenStore().Write(body.Path, body.Value);
            return ApiResponse.NoContent();
        });
        routes.MapGet(ChannelsPath, _ =>
        {
            DomainXenStore store = vmm.XenStore();
            return ApiResponse.Json(new XenChannelListing { Channels = store.Channels?.Invoke() ?? [] }, json.XenChannelListing);
        });
        routes.MapDelete(Path, request =>
        {
            vmm.XenStore().Remove(request.QueryValue("path") ?? throw ApiException.BadRequest("a XenStore path is required: ?path=..."));
            return ApiResponse.NoContent();
        });
    }
}
