using System.Text.RegularExpressions;
using SharpVisor.Interop;

namespace SharpVisor.Host.Vmm;

/// <summary>
/// The one rule for each configuration field that more than one edge accepts (the Firecracker
/// API, a config file, the <c>run</c> command line). Each returns null when the value is
/// acceptable, or the reason it is not; the edge turns the reason into its own error (400, or
/// a one-line CLI error). A value that passes here is never refused later when the machine is
/// built — which is what used to happen with a 64-character drive_id accepted by PUT /drives
/// and refused by InstanceStart.
/// </summary>
public static partial class ConfigurationRules
{
    /// <summary>Drive and interface ids: Firecracker's alphabet. A disk's id is also its serial, of which the guest sees the first 20 bytes.</summary>
    public const int MaxDeviceIdLength = 64;

    /// <summary>IFNAMSIZ - 1.</summary>
    public const int MaxTapNameLength = 15;

    public const int MinDiskImageBytes = 512;

    public static string? DeviceId(string id, string field) =>
        DeviceIdPattern().IsMatch(id) ? null : $"{field} '{id}' is invalid: use 1-{MaxDeviceIdLength} letters, digits or underscores";

    public static string? TapName(string name, string field) =>
        name.Length is 0 or > MaxTapNameLength || name.Any(c => c is '/' or ':' || char.IsWhiteSpace(c) || c is < ' ' or > '~')
            ? $"{field} '{name}' is not a valid interface name (1-{MaxTapNameLength} ASCII characters, no '/', ':' or spaces)"
            : null;

    public static string? Mac(string text, string field)
    {
        try
        {
            MacAddress.Parse(text);
            return null;
        }
        catch (ArgumentException e)
        {
            return $"{field}: {e.Message}";
        }
    }

    /// <summary>A disk image must be a regular file of at least one sector (the disk's capacity rounds down to sectors).</summary>
    public static string? DiskImage(string path, string field)
    {
        if (string.IsNullOrEmpty(path))
        {
            return $"{field}: empty path";
        }

        if (Directory.Exists(path))
        {
            return $"{field} '{path}' is a directory, not a regular file";
        }

        if (!IsRegularFile(path))
        {
            return File.Exists(path) ? $"{field} '{path}' is not a regular file" : $"{field} '{path}' does not exist";
        }

        return new FileInfo(path).Length < MinDiskImageBytes ? $"{field} '{path}' is smaller than one {MinDiskImageBytes}-byte sector" : null;
    }

    /// <summary>
    /// xl's <c>phy:/dev/xvdX</c> target of a disk served by a guest driver domain: one of that
    /// domain's own disks (docs/xen.md, "A Linux guest as the driver domain"), not a host file.
    /// </summary>
    public static bool IsDriverDomainDevice(string path) =>
        path is { Length: 9 } && path.StartsWith("/dev/xvd", StringComparison.Ordinal) && path[8] is >= 'a' and <= 'p';

    /// <summary>Two disks on one image would corrupt it.</summary>
    public static bool SameImage(string a, string b) => Path.GetFullPath(a) == Path.GetFullPath(b);

    public static string? StatisticsInterval(int seconds, string field) =>
        seconds is < 0 or > BalloonConfiguration.MaxStatisticsIntervalSeconds
            ? $"{field} {seconds} is out of range (0-{BalloonConfiguration.MaxStatisticsIntervalSeconds} s)"
            : null;

    private static unsafe bool IsRegularFile(string path)
    {
        FileStat stat;
        return LibC.Stat(path, &stat) == 0 && stat.IsRegularFile;
    }

    [GeneratedRegex("^[A-Za-z0-9_]{1,64}$")]
    private static partial Regex DeviceIdPattern();
}
