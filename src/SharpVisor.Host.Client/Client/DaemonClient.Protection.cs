using System.Net.Http.Json;
using SharpVisor.Host.Firecracker;

namespace SharpVisor.Host.Client;

/// <summary>Kernel protection through the daemon: status, raising the policy, attestation quotes (docs/security.md).</summary>
public sealed partial class DaemonClient
{
    public Task<ProtectionStatus> GetProtectionAsync(string domain, CancellationToken cancel = default) =>
        GetAsync(DomainPath(domain) + "/protection", ControlJsonContext.Default.ProtectionStatus, cancel);

    public Task<ProtectionStatus> RaiseProtectionAsync(string domain, string policy, CancellationToken cancel = default) =>
        SendAsync(HttpMethod.Put, DomainPath(domain) + "/protection", new ProtectionConfiguration { Policy = policy }, ControlJsonContext.Default.ProtectionConfiguration, ControlJsonContext.Default.ProtectionStatus, cancel);

    /// <summary>A quote for <paramref name="nonce"/>, as the domain's VMM signed it (JSON text: its payload bytes are what is signed).</summary>
    public async Task<string> AttestAsync(string domain, string nonce, CancellationToken cancel = default)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"{DomainPath(domain)}/attestation?nonce={Uri.EscapeDataString(nonce)}");
        using HttpResponseMessage response = await SendAsync(request, cancel);
        await EnsureSuccessAsync(response, cancel);
        return await response.Content.ReadAsStringAsync(cancel);
    }
}
