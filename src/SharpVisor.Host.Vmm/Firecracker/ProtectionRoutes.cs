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
    public const string AttestationPath = VmmPaths.Attestation;
    public const string Path = VmmPaths.Protection;

    public static void Map(ApiRouter routes, VmmController vmm)
    {
        ControlJsonContext json = ControlJsonContext.Default;
        routes.MapGet(AttestationPath, request =>
            ApiResponse.Text(vmm.Attest(request.QueryValue("nonce")).ToJson(), "application/json"));
        routes.MapGet(Path, _ => ApiResponse.Json(vmm.GetProtection(), json.ProtectionStatus));
        routes.MapPut(Path, request =>
        {
            vmm.SetProtection(request.ReadJson(json.ProtectionConfiguration));
            return ApiResponse.NoContent();
        });
    }
}
