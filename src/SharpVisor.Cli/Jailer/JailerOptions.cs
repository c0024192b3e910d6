using System.Globalization;
using System.Text;
using SharpVisor.Host.Firecracker;
using SharpVisor.Interop;

namespace SharpVisor.Cli.Jailer;

/// <summary>
/// The jailer's command line checked in Firecracker's order (its Env::new): the id, the
/// exec-file, the chroot base, uid and gid, the parent cgroup, the cgroup version (with v2 and no
/// --cgroup: the move into an existing parent cgroup, done here as Firecracker does), each
/// --cgroup, each --resource-limit. Everything here is a refusal before anything is created.
/// </summary>
public sealed class JailerOptions
{
    public const string DefaultChrootBase = "/srv/jailer";

    /// <summary>Firecracker's default RLIMIT_NOFILE when no --resource-limit no-file is given.</summary>
    public const ulong DefaultNoFile = 2048;

    public required string Id { get; init; }

    /// <summary>The exec-file, canonical.</summary>
    public required string ExecFilePath { get; init; }

    public string ExecFileName => Path.GetFileName(ExecFilePath);

    /// <summary>&lt;chroot-base&gt;/&lt;exec-file name&gt;/&lt;id&gt;/root.</summary>
    public required string ChrootDirectory { get; init; }

    public required uint Uid { get; init; }

    public required uint Gid { get; init; }

    public string? NetNs { get; init; }

    public bool Daemonize { get; init; }

    public bool NewPidNs { get; init; }

    public CgroupSetup? Cgroups { get; init; }

    public ulong? FileSizeLimit { get; init; }

    public ulong NoFileLimit { get; init; } = DefaultNoFile;

    /// <summary>The minor of /dev/userfaultfd (a dynamic misc device) when the host has one.</summary>
    public uint? UserfaultfdMinor { get; init; }

    public IReadOnlyList<string> ExtraArguments { get; init; } = [];

    public static JailerOptions FromArguments(FirecrackerArgumentParser arguments, string procMounts = "/proc/mounts", string procMisc = "/proc/misc")
    {
        string id = arguments.Value("id")!;
        ValidateInstanceId(id);

        string execFile = Canonicalize(arguments.Value("exec-file")!);
        if (!File.Exists(execFile))
        {
            throw new JailerException("NotAFile(..)", $"{execFile} is not a file");
        }

        string chrootBase = Canonicalize(arguments.Value("chroot-base-dir")!);
        if (!Directory.Exists(chrootBase))
        {
            throw new JailerException("NotADirectory(..)", $"{chrootBase} is not a directory");
        }

        string chrootDirectory = Path.Combine(chrootBase, Path.GetFileName(execFile), id, "root");

        string uidText = arguments.Value("uid")!;
        if (!uint.TryParse(uidText, NumberStyles.None, CultureInfo.InvariantCulture, out uint uid))
        {
            throw new JailerException($"Uid({FirecrackerArgumentParser.Debug(uidText)})", $"Invalid uid: {uidText}");
        }

        string gidText = arguments.Value("gid")!;
        if (!uint.TryParse(gidText, NumberStyles.None, CultureInfo.InvariantCulture, out uint gid))
        {
            throw new JailerException($"Gid({FirecrackerArgumentParser.Debug(gidText)})", $"Invalid gid: {gidText}");
        }

        string parentCgroup = arguments.Value("parent-cgroup") ?? Path.GetFileName(execFile);
        if (HasSpecialComponent(parentCgroup))
        {
            throw new JailerException("CgroupInvalidParentPath", "Parent cgroup path is invalid. Path should not be absolute or contain '..' or '.'");
        }

        string versionText = arguments.Value("cgroup-version")!;
        if (!byte.TryParse(versionText, NumberStyles.None, CultureInfo.InvariantCulture, out byte cgroupVersion))
        {
            throw new JailerException($"CgroupInvalidVersion({FirecrackerArgumentParser.Debug(versionText)})", $"{versionText} is an invalid cgroup version specifier");
        }

        IReadOnlyList<string>? cgroupArguments = arguments.Values("cgroup");
        if ((cgroupArguments is null || cgroupArguments.Count == 0) && cgroupVersion == 2)
        {
            // With v2 and no --cgroup, the intent is to move into an existing parent cgroup.
            string parent = Path.Combine(CgroupSetup.Discover(2, procMounts).UnifiedPath, parentCgroup);
            if (Directory.Exists(parent))
            {
                try
                {
                    File.WriteAllText(Path.Combine(parent, "cgroup.procs"), Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    throw new JailerException(
                        "CgroupMove(..)",
                        $"Failed to move process to cgroup ({parent}): {JailerException.IoError(e)}.\nHint: If you intended to create a child cgroup under {parent}, pass any --cgroup parameters.");
                }
            }
        }

        CgroupSetup? cgroups = null;
        if (cgroupArguments is not null)
        {
            cgroups = CgroupSetup.Discover(cgroupVersion, procMounts);
            foreach (string cgroup in cgroupArguments)
            {
                string[] parts = cgroup.Split('=');
                if (parts.Length != 2 || parts[1].Length == 0)
                {
                    throw new JailerException($"CgroupFormat({FirecrackerArgumentParser.Debug(cgroup)})", $"Invalid format for cgroups: {cgroup}");
                }

                if (HasSpecialComponent(parts[0]))
                {
                    throw new JailerException($"CgroupInvalidFile({FirecrackerArgumentParser.Debug(cgroup)})", $"Cgroup invalid file: {cgroup}");
                }

                cgroups.Add(parts[0], parts[1], id, parentCgroup);
            }
        }

        ulong? fileSize = null;
        ulong noFile = DefaultNoFile;
        foreach (string limit in arguments.Values("resource-limit") ?? [])
        {
            int equals = limit.IndexOf('=', StringComparison.Ordinal);
            if (equals < 0)
            {
                throw new JailerException($"ResLimitFormat({FirecrackerArgumentParser.Debug(limit)})", $"Invalid format for resources limits: {limit}");
            }

            string name = limit[..equals];
            string value = limit[(equals + 1)..];
            ulong parsed = ParseU64(value);
            switch (name)
            {
                case "fsize":
                    fileSize = parsed;
                    break;
                case "no-file":
                    noFile = parsed;
                    break;
                default:
                    throw new JailerException($"ResLimitArgument({FirecrackerArgumentParser.Debug(name)})", $"Invalid resource argument: {name}");
            }
        }

        return new JailerOptions
        {
            Id = id,
            ExecFilePath = execFile,
            ChrootDirectory = chrootDirectory,
            Uid = uid,
            Gid = gid,
            NetNs = arguments.Value("netns"),
            Daemonize = arguments.Flag("daemonize"),
            NewPidNs = arguments.Flag("new-pid-ns"),
            Cgroups = cgroups,
            FileSizeLimit = fileSize,
            NoFileLimit = noFile,
            UserfaultfdMinor = UserfaultfdMinorOf(procMisc),
            ExtraArguments = arguments.ExtraArguments,
        };
    }

    /// <summary>Firecracker's validate_instance_id: 1 to 64 bytes, alphanumeric characters and hyphens.</summary>
    public static void ValidateInstanceId(string id)
    {
        int length = Encoding.UTF8.GetByteCount(id);
        if (length is < 1 or > 64)
        {
            throw new JailerException(
                $"InvalidInstanceId(InvalidLen({length}, 1, 64))",
                $"Invalid instance ID: Invalid len ({length});  the length must be between 1 and 64");
        }

        int position = 0;
        foreach (Rune rune in id.EnumerateRunes())
        {
            if (rune.Value != '-' && !Rune.IsLetterOrDigit(rune))
            {
                throw new JailerException(
                    $"InvalidInstanceId(InvalidChar({rune}, {position}))",
                    $"Invalid instance ID: Invalid char ({rune}) at position {position}");
            }

            position++;
        }
    }

    /// <summary>Rust's str::parse::&lt;u64&gt;, with its error texts.</summary>
    private static ulong ParseU64(string value)
    {
        string? error = null;
        if (value.Length == 0)
        {
            error = "cannot parse integer from empty string";
        }
        else if (!value.TrimStart('+').All(char.IsAsciiDigit) || value == "+" || value.StartsWith("++", StringComparison.Ordinal))
        {
            error = "invalid digit found in string";
        }
        else if (!ulong.TryParse(value.TrimStart('+'), NumberStyles.None, CultureInfo.InvariantCulture, out ulong parsed))
        {
            error = "number too large to fit in target type";
        }
        else
        {
            return parsed;
        }

        throw new JailerException($"ResLimitValue({FirecrackerArgumentParser.Debug(value)}, {FirecrackerArgumentParser.Debug(error)})", $"Invalid limit value for resource: {value}: {error}");
    }

    /// <summary>Absolute, ".", ".." or empty components: refused in --parent-cgroup and a --cgroup file.</summary>
    private static bool HasSpecialComponent(string path) =>
        path.StartsWith('/') || path.Split('/').Any(c => c is "." or "..");

    /// <summary>std::fs::canonicalize: realpath(3), failing for a path that does not exist.</summary>
    private static string Canonicalize(string path) =>
        LibC.Realpath(path, out int errno)
        ?? throw JailerException.Os("Canonicalize", $"Failed to canonicalize path {path}", errno);

    /// <summary>The dynamic minor of the userfaultfd misc device, from /proc/misc ("257 userfaultfd").</summary>
    private static uint? UserfaultfdMinorOf(string procMisc)
    {
        try
        {
            foreach (string line in File.ReadLines(procMisc))
            {
                string[] words = line.Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (words.Length >= 2 && words[1] == "userfaultfd" && uint.TryParse(words[0], NumberStyles.None, CultureInfo.InvariantCulture, out uint minor))
                {
                    return minor;
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        return null;
    }
}
