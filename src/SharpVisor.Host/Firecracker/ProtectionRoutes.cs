using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using SharpVisor.Host.Http;

namespace SharpVisor.Host.Firecracker;

/// <summary>
/// Kernel runtime protection on a domain's VMM (docs/security.md): GET /attestation?nonce=HEX (a
/// signed quote), GET /sharpvisor/protection (policy, lock, measurements, violations and the
/// recent violation events) and PUT /sharpvisor/protection {"policy": "..."} (before boot: the
/// policy; running: raise it, lowering refused).
/// </summary>
public static class ProtectionRoutes
{
    public const string AttestationPath = "/attestation";
    public const string Path = "/sharpvisor/protection";

    public static void Map(IEndpointRouteBuilder routes, VmmController vmm)
    {
        ControlJsonContext json = ControlJsonContext.Default;
        routes.MapGet(AttestationPath, (string? nonce) => ApiResults.Guard(() =>
            Results.Text(vmm.Attest(nonce).ToJson(), "application/json")));
        routes.MapGet(Path, () => ApiResults.Guard(() => Results.Json(vmm.GetProtection(), json.ProtectionStatus)));
        routes.MapPut(Path, (HttpRequest request) => ApiResults.GuardAsync(async () =>
        {
            ProtectionConfiguration body = await JsonBody.ReadAsync(request, json.ProtectionConfiguration);
            vmm.SetProtection(body);
            return ApiResults.NoContent();
        }));
    }
}
