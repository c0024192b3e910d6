using System.Net.Sockets;

namespace SharpVisor.Host.Http;

/// <summary>Socket-file housekeeping: refuse a path something listens on, clear a stale one.</summary>
public static class UnixSocketFiles
{
    public static void PrepareForListening(string path)
    {
        string? directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is null || !Directory.Exists(directory))
        {
            throw ApiException.BadRequest($"the directory of socket '{path}' does not exist");
        }

        if (!File.Exists(path) && !Directory.Exists(path))
        {
            return;
        }

        if (IsListening(path))
        {
            throw ApiException.Conflict($"socket '{path}' is in use by another process");
        }

        File.Delete(path);
    }

    /// <summary>Mode 0600 (0700 for directories): only the owner may connect or read.</summary>
    public static void RestrictToOwner(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        UnixFileMode mode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        if (Directory.Exists(path))
        {
            mode |= UnixFileMode.UserExecute;
        }

        File.SetUnixFileMode(path, mode);
    }

    /// <summary>True when something accepts connections on the socket at <paramref name="path"/>.</summary>
    public static bool IsListening(string path)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(path));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
