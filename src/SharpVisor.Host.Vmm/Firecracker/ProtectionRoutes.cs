using System.Text.Json;
using SharpVisor.Host.Domains;
using SharpVisor.Host.Http;

namespace SharpVisor.Host.Firecracker;

/// <summary>
/// Kernel runtime protection on a domain's VMM (docs/security.md): GET /attestation?nonce=HEX (a
/// signed quote), GET /sharpvisor/protection (policy, lock, measurements, violations and the
/// recent violation events) and PUT /sharpvisor/protection {"policy": "..."} (before boot: the
/// policy; running: raise it, lowering refused), and GET /sharpvisor/events: the recent violation
/// events, then each new one as it happens, one JSON object a line (application/x-ndjson), until
/// the client goes away.
/// </summary>
public static class ProtectionRoutes
{
    public const string AttestationPath = VmmPaths.Attestation;
    public const string Path = VmmPaths.Protection;
    public const string EventsPath = VmmPaths.Events;
    public const string EventsContentType = VmmPaths.EventsContentType;

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
        routes.MapGet(EventsPath, _ =>
        {
            ProtectionEventLog events = vmm.GetProtectionEvents();
            return ApiResponse.Streamed(EventsContentType, (stream, stopping) => StreamEventsAsync(events, stream, stopping));
        });
    }

    /// <summary>Writes the events as JSON lines until the client closes its end (or the VMM stops).</summary>
    private static async Task StreamEventsAsync(ProtectionEventLog events, Stream stream, CancellationToken stopping)
    {
        using var gone = CancellationTokenSource.CreateLinkedTokenSource(stopping);

        // The client sends nothing more: a read that ends means it went away, even while no event comes.
        _ = WatchForCloseAsync(stream, gone);
        try
        {
            await foreach (ProtectionEvent e in events.FollowAsync(gone.Token))
            {
                byte[] line = JsonSerializer.SerializeToUtf8Bytes(e, ControlJsonContext.Default.ProtectionEvent);
                await stream.WriteAsync(line, gone.Token);
                await stream.WriteAsync("\n"u8.ToArray(), gone.Token);
                await stream.FlushAsync(gone.Token);
            }
        }
        catch (OperationCanceledException)
        {
            // The client went away or the VMM stops: the stream ends.
        }
    }

    private static async Task WatchForCloseAsync(Stream stream, CancellationTokenSource gone)
    {
        byte[] buffer = new byte[64];
        try
        {
            while (await stream.ReadAsync(buffer, gone.Token) > 0)
            {
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException or System.Net.Sockets.SocketException)
        {
        }

        try
        {
            gone.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The stream ended first.
        }
    }
}
