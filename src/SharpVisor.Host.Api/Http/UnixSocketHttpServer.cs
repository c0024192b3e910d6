using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;

namespace SharpVisor.Host.Http;

/// <summary>
/// A small HTTP/1.1 server on a Unix socket for the VMM's API: no ASP.NET Core, so a VMM is
/// ready in milliseconds. Requests are read by <see cref="HttpRequestReader"/> (bounded, keep-alive,
/// Content-Length bodies) and answered one at a time per connection by the handler; at most
/// <see cref="MaxConnections"/> connections are served at once (more are answered 503 and closed).
/// </summary>
public sealed class UnixSocketHttpServer : IAsyncDisposable
{
    public const int MaxConnections = 64;

    private readonly Socket _listener;
    private readonly Func<ApiRequest, ApiResponse> _handler;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<Socket, Task> _connections = new();
    private readonly Task _acceptLoop;

    private UnixSocketHttpServer(Socket listener, Func<ApiRequest, ApiResponse> handler)
    {
        _listener = listener;
        _handler = handler;
        _acceptLoop = AcceptLoopAsync();
    }

    /// <summary>Binds and listens on <paramref name="socketPath"/> (which must not exist) and starts serving.</summary>
    public static UnixSocketHttpServer Start(string socketPath, Func<ApiRequest, ApiResponse> handler)
    {
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            listener.Bind(new UnixDomainSocketEndPoint(socketPath));
            listener.Listen(128);
        }
        catch
        {
            listener.Dispose();
            throw;
        }

        return new UnixSocketHttpServer(listener, handler);
    }

    /// <summary>Serves on a socket that already listens (inherited across exec: the Firecracker front end's handover).</summary>
    public static UnixSocketHttpServer Adopt(Socket listener, Func<ApiRequest, ApiResponse> handler) => new(listener, handler);

    /// <summary>The listening socket (the handover passes its descriptor across exec).</summary>
    public Socket Listener => _listener;

    /// <summary>
    /// Serves a connection accepted by another process: <paramref name="buffered"/> are the bytes
    /// it had read (the pending request first); that first request goes to <paramref name="first"/>,
    /// the rest to the server's handler.
    /// </summary>
    public void ServeInherited(Socket connection, byte[] buffered, Func<ApiRequest, ApiResponse> first)
    {
        var serve = new Task<Task>(() => ServeAsync(connection, buffered, first));
        _connections[connection] = serve.Unwrap();
        serve.Start(TaskScheduler.Default);
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket connection;
            try
            {
                connection = await _listener.AcceptAsync(_stopping.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            if (_connections.Count >= MaxConnections)
            {
                _ = RefuseAsync(connection);
                continue;
            }

            // Registered before it runs, so that its own removal at the end always finds it.
            var serve = new Task<Task>(() => ServeAsync(connection, [], null));
            _connections[connection] = serve.Unwrap();
            serve.Start(TaskScheduler.Default);
        }
    }

    private static async Task RefuseAsync(Socket connection)
    {
        using (connection)
        {
            try
            {
                await WriteAsync(new NetworkStream(connection), ApiResponse.Fault(503, $"the API serves at most {MaxConnections} connections at once"), keepAlive: false, CancellationToken.None);
            }
            catch (Exception e) when (e is IOException or SocketException)
            {
                // The client went away first.
            }
        }
    }

    private async Task ServeAsync(Socket connection, byte[] buffered, Func<ApiRequest, ApiResponse>? first)
    {
        try
        {
            using var stream = new NetworkStream(connection, ownsSocket: true);
            var reader = new HttpRequestReader(stream, buffered);
            reader.Connection = new ApiConnection(connection, reader);
            while (!_stopping.IsCancellationRequested)
            {
                ApiRequest? request;
                try
                {
                    request = await reader.ReadAsync(_stopping.Token);
                }
                catch (HttpProtocolException e)
                {
                    await WriteAsync(stream, ApiResponse.Fault(e.StatusCode, e.Message), keepAlive: false, _stopping.Token);
                    await LingerAsync(connection);
                    return;
                }

                if (request is null)
                {
                    return;
                }

                ApiResponse response = (first ?? _handler)(request);
                first = null;
                if (response.WriteBody is { } writeBody)
                {
                    // A streamed body has no length: it ends where the connection closes.
                    await WriteAsync(stream, response, keepAlive: false, _stopping.Token);
                    await writeBody(stream, _stopping.Token);
                    return;
                }

                await WriteAsync(stream, response, request.KeepAlive, _stopping.Token);
                if (!request.KeepAlive)
                {
                    return;
                }
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The client went away, or the server is stopping.
        }
        finally
        {
            _connections.TryRemove(connection, out _);
        }
    }

    /// <summary>
    /// Closes after an error answer without losing it: closing with unread request bytes would
    /// reset the connection before the client reads the answer, so the rest is read and dropped
    /// (at most <see cref="LingerBytes"/> bytes for at most <see cref="LingerTime"/>).
    /// </summary>
    private static async Task LingerAsync(Socket connection)
    {
        connection.Shutdown(SocketShutdown.Send);
        using var timeout = new CancellationTokenSource(LingerTime);
        byte[] sink = new byte[4096];
        for (int drained = 0; drained < LingerBytes;)
        {
            int read = await connection.ReceiveAsync(sink, timeout.Token);
            if (read == 0)
            {
                return;
            }

            drained += read;
        }
    }

    private const int LingerBytes = 1 << 20;

    private static readonly TimeSpan LingerTime = TimeSpan.FromSeconds(2);

    private static async Task WriteAsync(Stream stream, ApiResponse response, bool keepAlive, CancellationToken cancel)
    {
        var head = new StringBuilder(128);
        head.Append("HTTP/1.1 ").Append(response.StatusCode).Append(' ').Append(ReasonPhrase(response.StatusCode)).Append("\r\n");
        head.Append(keepAlive ? "Connection: keep-alive\r\n" : "Connection: close\r\n");
        if (response.StatusCode != 204)
        {
            if (response.ContentType is { } type)
            {
                head.Append("Content-Type: ").Append(type).Append("\r\n");
            }

            if (response.WriteBody is null)
            {
                head.Append("Content-Length: ").Append(response.Body.Length).Append("\r\n");
            }
        }

        head.Append("\r\n");
        byte[] bytes = new byte[Encoding.ASCII.GetByteCount(head.ToString()) + response.Body.Length];
        int written = Encoding.ASCII.GetBytes(head.ToString(), bytes);
        response.Body.CopyTo(bytes, written);
        await stream.WriteAsync(bytes, cancel);
    }

    public static string ReasonPhrase(int statusCode) => statusCode switch
    {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Payload Too Large",
        417 => "Expectation Failed",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Status",
    };

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        _listener.Dispose();
        await _acceptLoop;
        foreach (Socket connection in _connections.Keys)
        {
            try
            {
                connection.Shutdown(SocketShutdown.Both);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                // Already closed.
            }
        }

        await Task.WhenAll(_connections.Values);
        _stopping.Dispose();
    }
}
