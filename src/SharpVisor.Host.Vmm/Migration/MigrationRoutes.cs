using System.Net.Sockets;
using System.Text.Json;
using System.Threading.Channels;
using SharpVisor.Host.Firecracker;
using SharpVisor.Host.Http;

namespace SharpVisor.Host.Migration;

/// <summary>
/// The VMM's migration routes, for the daemon (docs/migration.md):
/// <c>PUT /sharpvisor/migration/send {"destination": "HOST[:PORT]", "downtime_ms": N}</c> streams
/// the progress as text lines, the last one <c>migrated: ...</c> or <c>error: ...</c>;
/// <c>PUT /sharpvisor/migration/receive {"socket": PATH}</c> listens on a Unix socket for the one
/// connection (the daemon relays the TCP stream into it) and answers 204 once listening.
/// </summary>
public static class MigrationRoutes
{
    public static void Map(ApiRouter routes, VmmController vmm)
    {
        routes.MapPut("/sharpvisor/migration/send", request =>
        {
            string destination;
            MigrationOptions options;
            using (JsonDocument body = Read(request, "destination", "downtime_ms"))
            {
                destination = body.RootElement.TryGetProperty("destination", out JsonElement d) && d.ValueKind == JsonValueKind.String
                    ? d.GetString()!
                    : throw ApiException.BadRequest("destination (HOST[:PORT]) is required");
                int downtime = MigrationOptions.DefaultDowntimeMs;
                if (body.RootElement.TryGetProperty("downtime_ms", out JsonElement t) && (!t.TryGetInt32(out downtime) || downtime is < 1 or > 600_000))
                {
                    throw ApiException.BadRequest("downtime_ms must be an integer from 1 to 600000");
                }

                options = new MigrationOptions { DowntimeTarget = TimeSpan.FromMilliseconds(downtime) };
            }

            return ApiResponse.Streamed("text/plain; charset=utf-8", (stream, cancel) => SendAsync(vmm, destination, options, stream, cancel));
        });

        routes.MapPut("/sharpvisor/migration/receive", request =>
        {
            string path;
            using (JsonDocument body = Read(request, "socket"))
            {
                path = body.RootElement.TryGetProperty("socket", out JsonElement s) && s.ValueKind == JsonValueKind.String
                    ? s.GetString()!
                    : throw ApiException.BadRequest("socket (a Unix socket path) is required");
            }

            if (vmm.State != VmmState.NotStarted)
            {
                throw ApiException.BadRequest("the microVM has started already; a migration is received instead of InstanceStart");
            }

            File.Delete(path);
            var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            listener.Bind(new UnixDomainSocketEndPoint(path));
            UnixSocketFiles.RestrictToOwner(path);
            listener.Listen(1);
            _ = Task.Run(() =>
            {
                try
                {
                    using Socket connection = listener.Accept();
                    using var stream = new NetworkStream(connection, ownsSocket: false);
                    vmm.ReceiveMigration(stream);
                }
                catch (Exception e) when (e is MigrationException or SocketException or IOException or ApiException)
                {
                    vmm.Log.Error("vmm::migration", $"incoming migration failed: {e.Message}");
                }
                finally
                {
                    listener.Dispose();
                    File.Delete(path);
                }
            });
            return ApiResponse.NoContent();
        });
    }

    /// <summary>Runs the migration on a worker and writes its progress lines to the client as they come.</summary>
    private static async Task SendAsync(VmmController vmm, string destination, MigrationOptions options, Stream response, CancellationToken cancel)
    {
        Channel<string> lines = Channel.CreateUnbounded<string>();
        Task work = Task.Run(() =>
        {
            try
            {
                (string host, int port) = MigrationEndpoint.Parse(destination);
                using var client = new TcpClient { NoDelay = true };
                try
                {
                    client.ConnectAsync(host, port).Wait(TimeSpan.FromSeconds(10));
                }
                catch (AggregateException e) when (e.InnerException is SocketException s)
                {
                    throw new MigrationException($"cannot connect to {host}:{port}: {s.Message}", s);
                }

                if (!client.Connected)
                {
                    throw new MigrationException($"cannot connect to {host}:{port}: no answer within 10 s");
                }

                lines.Writer.TryWrite($"connected to {host}:{port}");
                MigrationResult result = vmm.MigrateOut(client.GetStream(), $"{host}:{port}", options, line => lines.Writer.TryWrite(line));
                lines.Writer.TryWrite($"migrated: {result.Rounds} rounds, {result.PagesSent} pages, {result.BytesSent / 1048576.0:0.0} MiB in {result.Total.TotalMilliseconds:0} ms; downtime {result.Downtime.TotalMilliseconds:0} ms");
            }
            catch (Exception e) when (e is MigrationException or ArgumentException or ApiException or NotSupportedException or SocketException)
            {
                lines.Writer.TryWrite($"error: {e.Message}");
            }
            finally
            {
                lines.Writer.TryComplete();
            }
        });

        try
        {
            await foreach (string line in lines.Reader.ReadAllAsync(cancel))
            {
                await response.WriteAsync(System.Text.Encoding.UTF8.GetBytes(line + "\n"), cancel);
                await response.FlushAsync(cancel);
            }
        }
        finally
        {
            // The migration ends its own way (resumed source or migrated) even when the client went away.
            await work;
        }
    }

    /// <summary>A JSON object with only the named fields (an unknown field is refused, never ignored).</summary>
    private static JsonDocument Read(ApiRequest request, params string[] fields)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(request.Body);
        }
        catch (JsonException e)
        {
            throw ApiException.BadRequest($"the body is not JSON: {e.Message}");
        }

        if (document.RootElement.ValueKind != JsonValueKind.Object)
        {
            document.Dispose();
            throw ApiException.BadRequest("the body must be a JSON object");
        }

        foreach (JsonProperty property in document.RootElement.EnumerateObject())
        {
            if (!fields.Contains(property.Name))
            {
                document.Dispose();
                throw ApiException.BadRequest($"unknown field '{property.Name}'");
            }
        }

        return document;
    }
}
