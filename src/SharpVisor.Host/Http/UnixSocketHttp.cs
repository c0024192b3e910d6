using System.Net.Sockets;

namespace SharpVisor.Host.Http;

/// <summary>HTTP clients that talk to a server on a Unix socket (the VMM's and the daemon's APIs).</summary>
public static class UnixSocketHttp
{
    /// <summary>A handler whose every connection goes to <paramref name="socketPath"/>.</summary>
    public static SocketsHttpHandler CreateHandler(string socketPath) => new()
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
    };

    /// <summary>A client for <paramref name="socketPath"/>; requests use http://localhost/ as the base address.</summary>
    public static HttpClient CreateClient(string socketPath, TimeSpan? timeout = null) =>
        new(CreateHandler(socketPath))
        {
            BaseAddress = new Uri("http://localhost/"),
            Timeout = timeout ?? TimeSpan.FromSeconds(30),
        };
}
