using System.Text.Json;
using SharpVisor.Host.Http;

namespace SharpVisor.Host.Firecracker;

/// <summary>
/// The small JSON file a per-domain VMM keeps in its runtime directory: its pid and state,
/// rewritten atomically on every change, so a restarted daemon can find it and learn how it ended.
/// </summary>
public static class VmmStateFile
{
    public static void Write(string path, VmmStatus status)
    {
        string temporary = $"{path}.{Environment.ProcessId}.tmp";
        File.WriteAllBytes(temporary, JsonSerializer.SerializeToUtf8Bytes(status, ControlJsonContext.Default.VmmStatus));
        UnixSocketFiles.RestrictToOwner(temporary);
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>Null when the file is missing or unreadable (a VMM that died before writing it).</summary>
    public static VmmStatus? TryRead(string path)
    {
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllBytes(path), ControlJsonContext.Default.VmmStatus);
        }
        catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
