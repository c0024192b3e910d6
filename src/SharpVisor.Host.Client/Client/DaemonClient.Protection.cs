using System.Net.Http.Json;
using SharpVisor.Host.Firecracker;
using SharpVisor.Host.Http;

namespace SharpVisor.Host.Client;

/// <summary>Kernel protection through the daemon: status, raising the policy, attestation quotes (docs/security.md).</summary>
public sealed partial class DaemonClient
{
    public Task<ProtectionStatus> GetProtectionAsync(string domain, CancellationToken cancel = default) =>
        GetAsync(DomainPath(domain) + "/protection", ControlJsonContext.Default.ProtectionStatus, cancel);

    public Task<ProtectionStatus> RaiseProtectionAsync(string domain, string policy, CancellationToken cancel = default) =>
        SendAsync(HttpMethod.Put, DomainPath(domain) + "/protection", new ProtectionConfiguration { Policy = policy }, ControlJsonContext.Default.ProtectionConfiguration, ControlJsonContext.Default.ProtectionStatus, cancel);

    /// <summary>
    /// Follows the violation events of <paramref name="domain"/> (null: every protected running
    /// domain): hands each JSON line to <paramref name="line"/> as it comes, until the stream ends
    /// (the VMMs stopped), <paramref name="line"/> returns false, or <paramref name="cancel"/>.
    /// </summary>
    public async Task FollowEventsAsync(string? domain, Func<string, bool> line, CancellationToken cancel = default)
    {
        // Its own client: the stream has no end the default timeout could bound.
        using HttpClient http = UnixSocketHttp.CreateClient(SocketPath, Timeout.InfiniteTimeSpan, pooled: false);
        HttpResponseMessage response;
        try
        {
            response = await http.GetAsync(domain is null ? "/events" : DomainPath(domain) + "/events", HttpCompletionOption.ResponseHeadersRead, cancel);
        }
        catch (HttpRequestException e)
        {
            throw new DaemonException(0, $"sharpvisord does not answer on {SocketPath}: {e.Message}");
        }

        using HttpResponseMessage answer = response;
        await EnsureSuccessAsync(response, cancel);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancel));
        while (await reader.ReadLineAsync(cancel) is { } text)
        {
            if (!line(text))
            {
                return;
            }
        }
    }

    /// <summary>A quote for <paramref name="nonce"/>, as the domain's VMM signed it (JSON text: its payload bytes are what is signed).</summary>
    public async Task<string> AttestAsync(string domain, string nonce, CancellationToken cancel = default)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"{DomainPath(domain)}/attestation?nonce={Uri.EscapeDataString(nonce)}");
        using HttpResponseMessage response = await SendAsync(request, cancel);
        await EnsureSuccessAsync(response, cancel);
        return await response.Content.ReadAsStringAsync(cancel);
    }
}
