using System.Globalization;

namespace SharpVisor.Host.Migration;

/// <summary>HOST[:PORT] of a migration destination; the port defaults to <see cref="DefaultPort"/>.</summary>
public static class MigrationEndpoint
{
    /// <summary>The destination daemon's default migration port (<c>sharpvisor daemon --migrate-listen</c>).</summary>
    public const int DefaultPort = 9555;

    public static (string Host, int Port) Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string host = text;
        int port = DefaultPort;
        int colon = text.LastIndexOf(':');
        if (colon >= 0 && text.IndexOf(']', StringComparison.Ordinal) < colon && (text.Count(c => c == ':') == 1 || text.StartsWith('[')))
        {
            host = text[..colon];
            if (!int.TryParse(text[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out port) || port is < 1 or > 65535)
            {
                throw new ArgumentException($"'{text}' is not HOST[:PORT] with a port of 1-65535");
            }
        }

        host = host.Trim('[', ']');
        if (host.Length == 0)
        {
            throw new ArgumentException($"'{text}' names no host");
        }

        return (host, port);
    }
}
