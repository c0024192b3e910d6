using System.Text;
using SharpVisor.Xen;

namespace SharpVisor.Host.Vmm;

/// <summary>
/// The XenStore messages of the inter-domain link (docs/xen.md, "Driver domains"): a request
/// { uint8 op; path NUL value } made as the calling domain, a reply { uint8 0; data } or
/// { uint8 1; errno name }. A directory's names are NUL-separated; a watch's value is its token.
/// </summary>
internal static class XenStoreLinkWire
{
    public const byte Read = 1;
    public const byte Write = 2;
    public const byte Directory = 3;
    public const byte Watch = 4;

    /// <summary>A guest's own watch, routed: its events carry { token NUL changed path }.</summary>
    public const byte WatchPaths = 5;

    public const int MaxPath = XenStore.MaxPathLength;
    public const int MaxValue = XenStore.MaxValueLength;

    public static byte[] Request(byte op, string path, string value = "")
    {
        byte[] payload = new byte[1 + Encoding.UTF8.GetByteCount(path) + 1 + Encoding.UTF8.GetByteCount(value)];
        payload[0] = op;
        int at = 1 + Encoding.UTF8.GetBytes(path, payload.AsSpan(1));
        payload[at] = 0;
        Encoding.UTF8.GetBytes(value, payload.AsSpan(at + 1));
        return payload;
    }

    /// <summary>The request's parts, or null for a malformed one (no NUL, an unknown op, too long).</summary>
    public static (byte Op, string Path, string Value)? Parse(ReadOnlySpan<byte> payload)
    {
        if (payload.Length < 2 || payload[0] is not (Read or Write or Directory or Watch or WatchPaths))
        {
            return null;
        }

        int nul = payload[1..].IndexOf((byte)0);
        if (nul <= 0 || nul > MaxPath || payload.Length - 2 - nul > MaxValue)
        {
            return null;
        }

        return (payload[0], Encoding.UTF8.GetString(payload.Slice(1, nul)), Encoding.UTF8.GetString(payload[(2 + nul)..]));
    }

    public static byte[] Ok(ReadOnlySpan<byte> data)
    {
        byte[] reply = new byte[1 + data.Length];
        data.CopyTo(reply.AsSpan(1));
        return reply;
    }

    public static byte[] Error(string errno)
    {
        byte[] reply = new byte[1 + errno.Length];
        reply[0] = 1;
        Encoding.ASCII.GetBytes(errno, reply.AsSpan(1));
        return reply;
    }
}
