using System.Net.Sockets;

namespace SharpVisor.Host.Http;

/// <summary>
/// The connection a request of <see cref="UnixSocketHttpServer"/> came on: its socket and the
/// bytes read past the request. The Firecracker front end hands both to the JIT VMM across exec.
/// </summary>
public sealed class ApiConnection
{
    private readonly HttpRequestReader _reader;

    internal ApiConnection(Socket socket, HttpRequestReader reader)
    {
        Socket = socket;
        _reader = reader;
    }

    public Socket Socket { get; }

    /// <summary>Bytes already read from the socket after the current request (a pipelined request's start).</summary>
    public byte[] BufferedBytes() => _reader.Buffered.ToArray();
}
