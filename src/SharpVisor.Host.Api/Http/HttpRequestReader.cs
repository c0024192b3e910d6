using System.Text;

namespace SharpVisor.Host.Http;

/// <summary>
/// Reads HTTP/1.1 requests from one connection of the lean API server. The client is not
/// trusted: the head (request line and headers) is bounded by <see cref="MaxHeadBytes"/> and
/// <see cref="MaxHeaders"/>, the body by <see cref="MaxBodyBytes"/>, framed by Content-Length
/// or chunked transfer coding (System.Net.Http sends JSON content chunked). Anything else is an
/// <see cref="HttpProtocolException"/> that the server answers before closing the connection.
/// Pipelined requests are kept in the buffer for the next call.
/// </summary>
public sealed class HttpRequestReader
{
    public const int MaxHeadBytes = 16 * 1024;
    public const int MaxHeaders = 64;

    /// <summary>Room above Firecracker's 51200-byte body limit, so that a handler can say which limit a body broke.</summary>
    public const int MaxBodyBytes = 2 * JsonBody.DefaultMaxBytes;

    private static readonly byte[] s_continue = "HTTP/1.1 100 Continue\r\n\r\n"u8.ToArray();

    private readonly Stream _stream;
    private readonly byte[] _buffer = new byte[MaxHeadBytes];
    private int _start;
    private int _end;

    public HttpRequestReader(Stream stream)
    {
        _stream = stream;
    }

    /// <summary>A reader whose first bytes were read by another process (the Firecracker front end's handover).</summary>
    public HttpRequestReader(Stream stream, ReadOnlySpan<byte> buffered)
        : this(stream)
    {
        if (buffered.Length > _buffer.Length)
        {
            throw new ArgumentException($"at most {_buffer.Length} buffered bytes can be handed over", nameof(buffered));
        }

        buffered.CopyTo(_buffer);
        _end = buffered.Length;
    }

    /// <summary>The connection this reader reads, given to each request it returns.</summary>
    internal ApiConnection? Connection { get; set; }

    /// <summary>Bytes read from the connection and not yet consumed (a pipelined request's start).</summary>
    public ReadOnlySpan<byte> Buffered => _buffer.AsSpan(_start, _end - _start);

    /// <summary>The next request, or null when the client closed the connection between requests.</summary>
    public async Task<ApiRequest?> ReadAsync(CancellationToken cancel)
    {
        int headEnd;
        while ((headEnd = FindHeadEnd()) < 0)
        {
            if (_end - _start >= MaxHeadBytes)
            {
                throw new HttpProtocolException(400, $"the request line and headers are larger than the {MaxHeadBytes}-byte limit");
            }

            Compact();
            int read = await _stream.ReadAsync(_buffer.AsMemory(_end), cancel);
            if (read == 0)
            {
                if (_end == _start)
                {
                    return null;
                }

                throw new HttpProtocolException(400, "the connection closed in the middle of a request");
            }

            _end += read;
        }

        Head head = ParseHead(_buffer.AsSpan(_start, headEnd - _start));
        _start = headEnd + 4;
        if (head.ExpectContinue && (head.ContentLength > 0 || head.Chunked))
        {
            await _stream.WriteAsync(s_continue, cancel);
        }

        byte[] body = head.Chunked ? await ReadChunkedBodyAsync(cancel) : await ReadBodyAsync(head.ContentLength, cancel);
        return new ApiRequest(head.Method, head.Path, head.Query, head.Headers, body) { KeepAlive = head.KeepAlive, Connection = Connection };
    }

    private async Task<byte[]> ReadBodyAsync(int length, CancellationToken cancel)
    {
        if (length == 0)
        {
            return [];
        }

        byte[] body = new byte[length];
        await ReadExactlyAsync(body, cancel);
        return body;
    }

    /// <summary>A chunked body: hex sizes (extensions ignored), each chunk and its CRLF, then trailers up to a blank line.</summary>
    private async Task<byte[]> ReadChunkedBodyAsync(CancellationToken cancel)
    {
        using var body = new MemoryStream();
        while (true)
        {
            string sizeLine = await ReadLineAsync(64, cancel);
            int semicolon = sizeLine.IndexOf(';', StringComparison.Ordinal);
            string hex = (semicolon < 0 ? sizeLine : sizeLine[..semicolon]).Trim(' ', '\t');
            if (hex.Length is 0 or > 8 || !hex.All(char.IsAsciiHexDigit))
            {
                throw new HttpProtocolException(400, "a chunk size is not a hexadecimal number");
            }

            long size = Convert.ToInt64(hex, 16);
            if (body.Length + size > MaxBodyBytes)
            {
                throw new HttpProtocolException(413, $"the request body is larger than the {MaxBodyBytes}-byte limit");
            }

            if (size == 0)
            {
                for (int trailers = 0; (await ReadLineAsync(MaxHeadBytes, cancel)).Length > 0; trailers++)
                {
                    if (trailers >= MaxHeaders)
                    {
                        throw new HttpProtocolException(400, $"the request has more than {MaxHeaders} trailers");
                    }
                }

                return body.ToArray();
            }

            byte[] chunk = new byte[size];
            await ReadExactlyAsync(chunk, cancel);
            body.Write(chunk);
            byte[] end = new byte[2];
            await ReadExactlyAsync(end, cancel);
            if (end[0] != '\r' || end[1] != '\n')
            {
                throw new HttpProtocolException(400, "a chunk is longer than its size says");
            }
        }
    }

    private async Task ReadExactlyAsync(byte[] target, CancellationToken cancel)
    {
        int buffered = Math.Min(target.Length, _end - _start);
        _buffer.AsSpan(_start, buffered).CopyTo(target);
        _start += buffered;
        int filled = buffered;
        while (filled < target.Length)
        {
            int read = await _stream.ReadAsync(target.AsMemory(filled), cancel);
            if (read == 0)
            {
                throw new HttpProtocolException(400, $"the connection closed after {filled} of the {target.Length} body bytes announced");
            }

            filled += read;
        }
    }

    /// <summary>A CRLF-terminated line of the body framing, at most <paramref name="maxLength"/> bytes.</summary>
    private async Task<string> ReadLineAsync(int maxLength, CancellationToken cancel)
    {
        while (true)
        {
            int index = _buffer.AsSpan(_start, _end - _start).IndexOf("\r\n"u8);
            if (index > maxLength || (index < 0 && _end - _start > maxLength))
            {
                throw new HttpProtocolException(400, "a line of the chunked body is too long");
            }

            if (index >= 0)
            {
                string line = Encoding.Latin1.GetString(_buffer, _start, index);
                _start += index + 2;
                return line;
            }

            Compact();
            int read = await _stream.ReadAsync(_buffer.AsMemory(_end), cancel);
            if (read == 0)
            {
                throw new HttpProtocolException(400, "the connection closed in the middle of a chunked body");
            }

            _end += read;
        }
    }

    private int FindHeadEnd()
    {
        int index = _buffer.AsSpan(_start, _end - _start).IndexOf("\r\n\r\n"u8);
        return index < 0 ? -1 : _start + index;
    }

    private void Compact()
    {
        if (_start == 0)
        {
            return;
        }

        _buffer.AsSpan(_start, _end - _start).CopyTo(_buffer);
        _end -= _start;
        _start = 0;
    }

    /// <summary>Parses a request head (without its final blank line). Public for the parser's tests.</summary>
    public static Head ParseHead(ReadOnlySpan<byte> bytes)
    {
        foreach (byte b in bytes)
        {
            // Control characters other than CR, LF and tab have no place in a request head.
            if ((b < 0x20 && b is not (byte)'\r' and not (byte)'\n' and not (byte)'\t') || b == 0x7F)
            {
                throw new HttpProtocolException(400, "the request head contains a control character");
            }
        }

        string text = Encoding.Latin1.GetString(bytes);
        string[] lines = text.Split("\r\n");
        (string method, string target, bool http10) = ParseRequestLine(lines[0]);
        if (lines.Length - 1 > MaxHeaders)
        {
            throw new HttpProtocolException(400, $"the request has more than {MaxHeaders} headers");
        }

        var headers = new List<KeyValuePair<string, string>>(lines.Length - 1);
        int? contentLength = null;
        bool keepAlive = !http10;
        bool expectContinue = false;
        bool chunked = false;
        for (int i = 1; i < lines.Length; i++)
        {
            (string name, string value) = ParseHeader(lines[i]);
            headers.Add(new(name, value));
            if (name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
            {
                int length = ParseContentLength(value);
                if (contentLength is { } earlier && earlier != length)
                {
                    throw new HttpProtocolException(400, "the request has two different Content-Length headers");
                }

                contentLength = length;
            }
            else if (name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase))
            {
                if (!value.Equals("chunked", StringComparison.OrdinalIgnoreCase))
                {
                    throw new HttpProtocolException(400, $"Transfer-Encoding '{value}' is not supported (only chunked)");
                }

                chunked = true;
            }
            else if (name.Equals("Connection", StringComparison.OrdinalIgnoreCase))
            {
                foreach (string option in value.Split(',', StringSplitOptions.TrimEntries))
                {
                    if (option.Equals("close", StringComparison.OrdinalIgnoreCase))
                    {
                        keepAlive = false;
                    }
                    else if (option.Equals("keep-alive", StringComparison.OrdinalIgnoreCase) && http10)
                    {
                        keepAlive = true;
                    }
                }
            }
            else if (name.Equals("Expect", StringComparison.OrdinalIgnoreCase))
            {
                if (!value.Equals("100-continue", StringComparison.OrdinalIgnoreCase))
                {
                    throw new HttpProtocolException(417, $"the expectation '{value}' is not supported (only 100-continue)");
                }

                expectContinue = true;
            }
        }

        if (chunked && contentLength is not null)
        {
            // Two framings for one body: a request smuggling attempt, or a broken client (RFC 9112 6.3).
            throw new HttpProtocolException(400, "the request has both Transfer-Encoding and Content-Length");
        }

        int questionMark = target.IndexOf('?', StringComparison.Ordinal);
        string rawPath = questionMark < 0 ? target : target[..questionMark];
        string path = Uri.UnescapeDataString(rawPath);
        if (path.Any(char.IsControl))
        {
            throw new HttpProtocolException(400, "the request path decodes to a control character");
        }

        IReadOnlyDictionary<string, string> query = questionMark < 0
            ? new Dictionary<string, string>()
            : ParseQuery(target[(questionMark + 1)..]);
        return new Head(method, path, query, headers, contentLength ?? 0, chunked, keepAlive, expectContinue);
    }

    private static (string Method, string Target, bool Http10) ParseRequestLine(string line)
    {
        string[] parts = line.Split(' ');
        if (parts.Length != 3)
        {
            throw new HttpProtocolException(400, "the request line is not 'METHOD TARGET HTTP/1.1'");
        }

        string method = parts[0];
        if (method.Length is 0 or > 16 || !method.All(IsTokenChar))
        {
            throw new HttpProtocolException(400, "the request method is not a valid token");
        }

        string target = parts[1];
        if (!target.StartsWith('/') || target.Any(c => c > 0x7E))
        {
            throw new HttpProtocolException(400, "the request target must be an absolute path (origin form)");
        }

        return parts[2] switch
        {
            "HTTP/1.1" => (method, target, false),
            "HTTP/1.0" => (method, target, true),
            _ => throw new HttpProtocolException(505, $"the HTTP version '{parts[2]}' is not supported (HTTP/1.1, HTTP/1.0)"),
        };
    }

    private static (string Name, string Value) ParseHeader(string line)
    {
        int colon = line.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0)
        {
            throw new HttpProtocolException(400, "a header line is not 'Name: value'");
        }

        string name = line[..colon];
        if (!name.All(IsTokenChar))
        {
            // Also refuses obsolete line folding and whitespace before the colon (RFC 9112 5.1, 5.2).
            throw new HttpProtocolException(400, "a header name is not a valid token");
        }

        return (name, line[(colon + 1)..].Trim(' ', '\t'));
    }

    private static int ParseContentLength(string value)
    {
        if (value.Length is 0 or > 10 || !value.All(char.IsAsciiDigit) || !long.TryParse(value, out long length))
        {
            throw new HttpProtocolException(400, "Content-Length is not a decimal number");
        }

        if (length > MaxBodyBytes)
        {
            throw new HttpProtocolException(413, $"the request body is larger than the {MaxBodyBytes}-byte limit");
        }

        return (int)length;
    }

    private static Dictionary<string, string> ParseQuery(string query)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string pair in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            int equals = pair.IndexOf('=', StringComparison.Ordinal);
            string name = Unescape(equals < 0 ? pair : pair[..equals]);
            string value = equals < 0 ? "" : Unescape(pair[(equals + 1)..]);
            values.TryAdd(name, value);
        }

        return values;
    }

    private static string Unescape(string text) => Uri.UnescapeDataString(text.Replace('+', ' '));

    private static bool IsTokenChar(char c) =>
        char.IsAsciiLetterOrDigit(c) || "!#$%&'*+-.^_`|~".Contains(c, StringComparison.Ordinal);

    /// <summary>A parsed request head.</summary>
    public sealed record Head(
        string Method,
        string Path,
        IReadOnlyDictionary<string, string> Query,
        IReadOnlyList<KeyValuePair<string, string>> Headers,
        int ContentLength,
        bool Chunked,
        bool KeepAlive,
        bool ExpectContinue);
}
