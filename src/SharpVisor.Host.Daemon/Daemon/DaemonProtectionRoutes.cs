using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using SharpVisor.Host.Firecracker;
using SharpVisor.Host.Http;

namespace SharpVisor.Host.Daemon;

/// <summary>
/// The daemon's kernel-protection routes, each through the domain's VMM (docs/security.md):
/// GET /domains/{domain}/protection (status and recent violations), PUT /domains/{domain}/protection
/// {"policy"} (raise; lowering refused), GET /domains/{domain}/attestation?nonce=HEX (a quote).
/// </summary>
public static class DaemonProtectionRoutes
{
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
    }
}
