using System.Net.Sockets;
using System.Text;
using SharpVisor.Host.Http;

namespace SharpVisor.Host.Tests.Http;

/// <summary>
/// The VMM's lean HTTP/1.1 server over raw sockets: what a well-behaved client sends is
/// served (keep-alive, pipelining, 100-continue, query strings), what a hostile one sends is
/// answered 4xx and the connection closed, and the server keeps serving others.
/// </summary>
public sealed class UnixSocketHttpServerTests : IAsyncLifetime
{
    private readonly TempDirectory _directory = new();
    private UnixSocketHttpServer? _server;

    private string Socket => _directory.File("api.sock");

    public Task InitializeAsync()
    {
        var router = new ApiRouter();
        router.MapGet("/", _ => ApiResponse.Fault(200, "root"));
        router.MapPut("/echo/{id}", request => ApiResponse.Fault(200, $"{request.Route("id")}:{Encoding.UTF8.GetString(request.Body)}"));
        router.MapPut("/echo/fixed", _ => ApiResponse.Fault(200, "literal wins"));
        router.MapGet("/query", request => ApiResponse.Fault(200, $"{request.QueryValue("path")}|{request.QueryValue("flag")}"));
        router.MapGet("/fail", _ => throw new InvalidOperationException("boom"));
        router.MapDelete("/refuse", _ => throw ApiException.Conflict("not now"));
        router.Fallback = request => ApiResponse.Fault(400, $"Invalid request method and/or path: {request.Method} {request.Path}.");
        _server = UnixSocketHttpServer.Start(Socket, router.Dispatch);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }

        _directory.Dispose();
    }

    [Fact]
    public async Task KeepAliveServesSeveralRequestsOnOneConnection()
    {
        using var client = await ConnectAsync();
        await SendAsync(client, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
        string first = await ReadResponseAsync(client);
        await SendAsync(client, "PUT /echo/a1 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
        string second = await ReadResponseAsync(client);

        Assert.StartsWith("HTTP/1.1 200 OK\r\n", first);
        Assert.Contains("Connection: keep-alive\r\n", first);
        Assert.Contains("Content-Type: application/json; charset=utf-8\r\n", first);
        Assert.EndsWith("{\"fault_message\":\"root\"}", first);
        Assert.EndsWith("{\"fault_message\":\"a1:hello\"}", second);
    }

    [Fact]
    public async Task PipelinedRequestsAreAnsweredInOrder()
    {
        using var client = await ConnectAsync();
        await SendAsync(client, "PUT /echo/x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcPUT /echo/fixed HTTP/1.1\r\nContent-Length: 0\r\n\r\nGET /nope HTTP/1.1\r\nConnection: close\r\n\r\n");
        string all = await ReadToEndAsync(client);

        int x = all.IndexOf("x:abc", StringComparison.Ordinal);
        int literal = all.IndexOf("literal wins", StringComparison.Ordinal);
        int fallback = all.IndexOf("Invalid request method and/or path: GET /nope.", StringComparison.Ordinal);
        Assert.True(x > 0 && literal > x && fallback > literal, all);
    }

    [Fact]
    public async Task ExpectContinueIsAnsweredBeforeTheBodyIsSent()
    {
        using var client = await ConnectAsync();
        await SendAsync(client, "PUT /echo/big HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
        string interim = await ReadHeadAsync(client);
        await SendAsync(client, "body");
        string final = await ReadResponseAsync(client);

        Assert.Equal("HTTP/1.1 100 Continue\r\n\r\n", interim);
        Assert.EndsWith("big:body\"}", final);
    }

    [Fact]
    public async Task ChunkedBodiesAreReassembled()
    {
        using var client = await ConnectAsync();
        await SendAsync(client, "PUT /echo/ch HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n");
        Assert.EndsWith("ch:abcde\"}", await ReadResponseAsync(client));
        await SendAsync(client, "GET / HTTP/1.1\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 200 OK", await ReadResponseAsync(client));
    }

    [Fact]
    public async Task QueryStringsAndEscapedPathsAreDecoded()
    {
        using var client = await ConnectAsync();
        await SendAsync(client, "GET /query?path=%2Flocal%2Fdomain+x&flag HTTP/1.1\r\n\r\n");
        Assert.EndsWith("/local/domain x|\"}", await ReadResponseAsync(client));
        await SendAsync(client, "PUT /echo/a%20b HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
        Assert.EndsWith("a b:\"}", await ReadResponseAsync(client));
    }

    [Fact]
    public async Task HandlerFailuresBecomeFaultAnswersNotCrashes()
    {
        using var client = await ConnectAsync();
        await SendAsync(client, "GET /fail HTTP/1.1\r\n\r\n");
        string failed = await ReadResponseAsync(client);
        await SendAsync(client, "DELETE /refuse HTTP/1.1\r\n\r\n");
        string refused = await ReadResponseAsync(client);

        Assert.StartsWith("HTTP/1.1 500 ", failed);
        Assert.Contains("InvalidOperationException: boom", failed);
        Assert.StartsWith("HTTP/1.1 409 Conflict", refused);
    }

    [Theory]
    [InlineData("GARBAGE\r\n\r\n", 400, "request line")]
    [InlineData("GET  / HTTP/1.1\r\n\r\n", 400, "request line")]
    [InlineData("G(T / HTTP/1.1\r\n\r\n", 400, "method")]
    [InlineData("GET http://x/ HTTP/1.1\r\n\r\n", 400, "origin form")]
    [InlineData("GET / HTTP/2.0\r\n\r\n", 505, "HTTP version")]
    [InlineData("GET / HTTP/1.1\r\nNo colon here\r\n\r\n", 400, "Name: value")]
    [InlineData("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400, "header name")]
    [InlineData("GET / HTTP/1.1\r\nX: a\r\n folded: b\r\n\r\n", 400, "header name")]
    [InlineData("GET / HTTP/1.1\r\nX: a\u0001b\r\n\r\n", 400, "control character")]
    [InlineData("PUT /echo/a HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400, "Content-Length")]
    [InlineData("PUT /echo/a HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400, "two different Content-Length")]
    [InlineData("PUT /echo/a HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n", 413, "102400-byte limit")]
    [InlineData("PUT /echo/a HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 400, "Transfer-Encoding 'gzip'")]
    [InlineData("PUT /echo/a HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n", 400, "both Transfer-Encoding and Content-Length")]
    [InlineData("PUT /echo/a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400, "hexadecimal")]
    [InlineData("PUT /echo/a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n", 400, "longer than its size")]
    [InlineData("PUT /echo/a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nFFFFF\r\n", 413, "102400-byte limit")]
    [InlineData("PUT /echo/a HTTP/1.1\r\nExpect: magic\r\nContent-Length: 1\r\n\r\na", 417, "expectation")]
    [InlineData("GET /%00 HTTP/1.1\r\n\r\n", 400, "control character")]
    public async Task MalformedRequestsAreRefusedAndTheConnectionClosed(string request, int status, string reason)
    {
        using var client = await ConnectAsync();
        await SendAsync(client, request);
        string answer = await ReadToEndAsync(client);

        Assert.StartsWith($"HTTP/1.1 {status} ", answer);
        Assert.Contains("Connection: close\r\n", answer);
        Assert.Contains(reason, FaultOf(answer));
        await AssertServerStillAnswersAsync();
    }

    [Fact]
    public async Task AnOversizedHeadIsRefused()
    {
        using var client = await ConnectAsync();
        await SendAsync(client, "GET / HTTP/1.1\r\nX-Filler: " + new string('a', HttpRequestReader.MaxHeadBytes) + "\r\n\r\n");
        string answer = await ReadToEndAsync(client);

        Assert.StartsWith("HTTP/1.1 400 ", answer);
        Assert.Contains("16384-byte limit", FaultOf(answer));
        await AssertServerStillAnswersAsync();
    }

    [Fact]
    public async Task TooManyHeadersAreRefused()
    {
        using var client = await ConnectAsync();
        var request = new StringBuilder("GET / HTTP/1.1\r\n");
        for (int i = 0; i <= HttpRequestReader.MaxHeaders; i++)
        {
            request.Append("X-").Append(i).Append(": v\r\n");
        }

        await SendAsync(client, request.Append("\r\n").ToString());
        Assert.Contains("more than 64 headers", FaultOf(await ReadToEndAsync(client)));
    }

    [Fact]
    public async Task ABodyCutShortClosesTheConnection()
    {
        using var client = await ConnectAsync();
        await SendAsync(client, "PUT /echo/a HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc");
        client.Shutdown(SocketShutdown.Send);
        string answer = await ReadToEndAsync(client);

        Assert.StartsWith("HTTP/1.1 400 ", answer);
        Assert.Contains("after 3 of the 10 body bytes announced", FaultOf(answer));
    }

    [Fact]
    public async Task Http10ClosesUnlessAskedToKeepAlive()
    {
        using var closing = await ConnectAsync();
        await SendAsync(closing, "GET / HTTP/1.0\r\n\r\n");
        Assert.Contains("Connection: close\r\n", await ReadToEndAsync(closing));

        using var keeping = await ConnectAsync();
        await SendAsync(keeping, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        Assert.Contains("Connection: keep-alive\r\n", await ReadResponseAsync(keeping));
    }

    [Fact]
    public async Task TheServerAnswersHttpClient()
    {
        using HttpClient http = UnixSocketHttp.CreateClient(Socket);
        using var content = new StringContent("{\"a\":1}", Encoding.UTF8, "application/json");
        using HttpResponseMessage put = await http.PutAsync("/echo/c", content);
        using HttpResponseMessage get = await http.GetAsync("/");

        Assert.Equal(System.Net.HttpStatusCode.OK, put.StatusCode);
        Assert.Equal("c:{\"a\":1}", ApiResults.ReadFaultMessage(await put.Content.ReadAsStringAsync()));
        Assert.Equal("root", ApiResults.ReadFaultMessage(await get.Content.ReadAsStringAsync()));
    }

    /// <summary>The fault message of a response (its body decoded: JSON escapes quotes).</summary>
    private static string FaultOf(string response) =>
        ApiResults.ReadFaultMessage(response[(response.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4)..]);

    private async Task AssertServerStillAnswersAsync()
    {
        using var client = await ConnectAsync();
        await SendAsync(client, "GET / HTTP/1.1\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 200 OK", await ReadResponseAsync(client));
    }

    private async Task<Socket> ConnectAsync()
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified) { ReceiveTimeout = 10_000 };
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(Socket));
        return socket;
    }

    private static async Task SendAsync(Socket socket, string text) => await socket.SendAsync(Encoding.Latin1.GetBytes(text));

    private static async Task<string> ReadHeadAsync(Socket socket)
    {
        var head = new StringBuilder();
        byte[] one = new byte[1];
        while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            if (await socket.ReceiveAsync(one, timeout.Token) == 0)
            {
                break;
            }

            head.Append((char)one[0]);
        }

        return head.ToString();
    }

    /// <summary>One response: its head, then as many body bytes as Content-Length says.</summary>
    private static async Task<string> ReadResponseAsync(Socket socket)
    {
        string head = await ReadHeadAsync(socket);
        const string Marker = "Content-Length: ";
        int at = head.IndexOf(Marker, StringComparison.Ordinal);
        if (at < 0)
        {
            return head;
        }

        int length = int.Parse(head[(at + Marker.Length)..head.IndexOf('\r', at)], System.Globalization.CultureInfo.InvariantCulture);
        byte[] body = new byte[length];
        int filled = 0;
        while (filled < length)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            int read = await socket.ReceiveAsync(body.AsMemory(filled), timeout.Token);
            Assert.NotEqual(0, read);
            filled += read;
        }

        return head + Encoding.UTF8.GetString(body);
    }

    private static async Task<string> ReadToEndAsync(Socket socket)
    {
        var all = new MemoryStream();
        byte[] chunk = new byte[4096];
        while (true)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            int read = await socket.ReceiveAsync(chunk, timeout.Token);
            if (read == 0)
            {
                return Encoding.UTF8.GetString(all.ToArray());
            }

            all.Write(chunk, 0, read);
        }
    }
}
