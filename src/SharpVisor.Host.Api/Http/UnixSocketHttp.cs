using System.Net.Sockets;

namespace SharpVisor.Host.Http;

/// <summary>HTTP clients that talk to a server on a Unix socket (the VMM's and the daemon's APIs).</summary>
public static class UnixSocketHttp
{
    /// <summary>A handler whose every connection goes to <paramref name="socketPath"/>.</summary>
    /// <param name="pooled">Reuse connections; without pooling each request connects anew, so a socket that went away is noticed at once.</param>
    public static SocketsHttpHandler CreateHandler(string socketPath, bool pooled = true) => new()
    {
        ConnectCallback = async (_, cancel) =>
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancel);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
        PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30),
        PooledConnectionLifetime = pooled ? Timeout.InfiniteTimeSpan : TimeSpan.Zero,
    };

    /// <summary>A client for <paramref name="socketPath"/>; requests use http://localhost/ as the base address.</summary>
    public static HttpClient CreateClient(string socketPath, TimeSpan? timeout = null, bool pooled = true) =>
        new(CreateHandler(socketPath, pooled))
        {
            BaseAddress = new Uri("http://localhost/"),
            Timeout = timeout ?? TimeSpan.FromSeconds(30),
        };
}
