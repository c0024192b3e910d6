using System.Globalization;
using System.Text.RegularExpressions;
using SharpVisor.Host.Firecracker;

namespace SharpVisor.Cli.Jailer;

/// <summary>
/// The jailer's cgroup for the microVM, as Firecracker's jailer makes it: the hierarchies found in
/// /proc/mounts, <c>&lt;hierarchy&gt;/&lt;parent-cgroup&gt;/&lt;id&gt;</c> created, each
/// <c>--cgroup FILE=VALUE</c> written there, then the jailer's pid attached (v1: the controller's
/// <c>tasks</c>, which moves the calling thread — the one that execs; v2: <c>cgroup.procs</c>).
/// v1 inherits an empty value (cpuset.cpus, cpuset.mems) from the parents; v2 enables each
/// controller in <c>cgroup.subtree_control</c> of every ancestor, as Firecracker does.
/// </summary>
public sealed partial class CgroupSetup
{
    private readonly List<(string Location, string File, string Value, int ParentDepth)> _properties = [];

    private CgroupSetup(int version, IReadOnlyList<(string Directory, string Options)> v1Mounts, string? unified)
    {
        Version = version;
        V1Mounts = v1Mounts;
        Unified = unified;
    }

    public int Version { get; }

    /// <summary>The cgroup v1 mounts: directory and mount options (the controllers).</summary>
    public IReadOnlyList<(string Directory, string Options)> V1Mounts { get; }

    /// <summary>The cgroup v2 (unified) mount, when version 2.</summary>
    public string? Unified { get; }

    /// <summary>The cgroup directories the jailer creates and joins.</summary>
    public IEnumerable<string> Locations => _properties.Select(p => p.Location).Distinct(StringComparer.Ordinal);

    /// <summary>CgroupConfigurationBuilder::new: the hierarchies of <paramref name="version"/> in <paramref name="procMounts"/>.</summary>
    public static CgroupSetup Discover(int version, string procMounts)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines(procMounts);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new JailerException("FileOpen(..)", $"Failed to open file {procMounts}: {JailerException.IoError(e)}");
        }

        var v1 = new List<(string, string)>();
        string? unified = null;
        foreach (string line in lines)
        {
            Match match = MountLine().Match(line);
            if (!match.Success)
            {
                continue;
            }

            if (version == 2 && match.Groups["ver"].Value.Length == 1)
            {
                unified = match.Groups["dir"].Value;
                break;
            }

            if (version == 1 && match.Groups["ver"].Value.Length == 0)
            {
                v1.Add((match.Groups["dir"].Value, match.Groups["options"].Value));
            }
        }

        if (unified is null && v1.Count == 0)
        {
            throw new JailerException("CgroupHierarchyMissing(..)", "Hierarchy not found: No hierarchy found for this cgroup version.");
        }

        if (version is not (1 or 2))
        {
            throw new JailerException($"CgroupInvalidVersion(\"{version}\")", $"{version} is an invalid cgroup version specifier");
        }

        return new CgroupSetup(version, v1, unified);
    }

    public string UnifiedPath => Unified ?? throw new JailerException("CgroupHierarchyMissing(..)", "Hierarchy not found: cgroupsv2 hierarchy missing");

    /// <summary>add_cgroup_property: checks the controller exists and records where the value goes.</summary>
    public void Add(string file, string value, string id, string parentCgroup)
    {
        string controller = ControllerOf(file);
        int depth = parentCgroup.Split('/', StringSplitOptions.RemoveEmptyEntries).Length;
        if (Version == 1)
        {
            (string Directory, string Options)? mount = V1Mounts.Cast<(string Directory, string Options)?>()
                .FirstOrDefault(m => m!.Value.Options.Split(',').Contains(controller));
            if (mount is null)
            {
                throw new JailerException($"CgroupControllerUnavailable(\"{controller}\")", $"Controller {controller} is unavailable");
            }

            _properties.Add((Path.Combine(mount.Value.Directory, parentCgroup, id), file, value, depth));
        }
        else
        {
            string unified = UnifiedPath;
            if (!AvailableControllers(unified).Contains(controller))
            {
                throw new JailerException($"CgroupControllerUnavailable(\"{controller}\")", $"Controller {controller} is unavailable");
            }

            _properties.Add((Path.Combine(unified, parentCgroup, id), file, value, depth));
        }
    }

    /// <summary>setup_cgroup_conf: every cgroup's values written, then the pid attached to each.</summary>
    public void Apply(int pid)
    {
        var enabled = new HashSet<string>(StringComparer.Ordinal);
        foreach ((string location, string file, string value, int depth) in _properties)
        {
            CreateDirectory(location);
            if (Version == 1)
            {
                InheritFromParent(location, file, depth);
            }
            else
            {
                string controller = ControllerOf(file);
                if (enabled.Add(location + "\0" + controller))
                {
                    EnableInAncestors(Path.GetDirectoryName(location)!, controller);
                }
            }

            WriteLine(Path.Combine(location, file), value);
        }

        foreach (string location in Locations)
        {
            WriteLine(Path.Combine(location, Version == 1 ? "tasks" : "cgroup.procs"), pid.ToString(CultureInfo.InvariantCulture));
        }
    }

    /// <summary>Controller of "cpuset.cpus": "cpuset"; a name without a dot is refused.</summary>
    public static string ControllerOf(string file)
    {
        int dot = file.IndexOf('.', StringComparison.Ordinal);
        if (dot < 0)
        {
            throw new JailerException($"CgroupInvalidFile({FirecrackerArgumentParser.Debug(file)})", $"Cgroup invalid file: {file}");
        }

        return file[..dot];
    }

    /// <summary>The controllers a cgroup v2 hierarchy offers (cgroup.controllers of its root).</summary>
    public static HashSet<string> AvailableControllers(string unified)
    {
        try
        {
            return [.. File.ReadAllText(Path.Combine(unified, "cgroup.controllers")).Split([' ', '\n'], StringSplitOptions.RemoveEmptyEntries)];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    private static void EnableInAncestors(string path, string controller)
    {
        string subtreeControl = Path.Combine(path, "cgroup.subtree_control");
        if (!File.Exists(subtreeControl))
        {
            return;
        }

        if (Path.GetDirectoryName(path) is { } parent)
        {
            EnableInAncestors(parent, controller);
        }

        WriteLine(subtreeControl, "+" + controller);
    }

    /// <summary>v1: a file the parent leaves empty (cpuset.cpus/mems of a new cgroup) is first filled from the nearest ancestor that has it.</summary>
    private static void InheritFromParent(string location, string file, int depth)
    {
        string parentFile = Path.Combine(Path.GetDirectoryName(location)!, file);
        string line = ReadLine(parentFile);
        if (line.Length == 0 && depth > 0)
        {
            string parent = Path.GetDirectoryName(location)!;
            try
            {
                InheritFromParent(parent, file, depth - 1);
            }
            catch (JailerException)
            {
                // As Firecracker: the grandparent's failure is only fatal if the parent stays empty.
            }

            line = ReadLine(parentFile);
        }

        if (line.Length == 0)
        {
            throw new JailerException("CgroupInheritFromParent(..)", $"Failed to inherit cgroups configurations from file {file} in path {location}");
        }

        WriteLine(Path.Combine(location, file), line);
    }

    private static void CreateDirectory(string path)
    {
        try
        {
            Directory.CreateDirectory(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new JailerException("CreateDir(..)", $"Failed to create directory {path}: {JailerException.IoError(e)}");
        }
    }

    private static string ReadLine(string path)
    {
        try
        {
            string text = File.ReadAllText(path);
            return text.EndsWith('\n') ? text[..^1] : text;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new JailerException("ReadToString(..)", $"Failed to read file {path} into a string: {JailerException.IoError(e)}");
        }
    }

    /// <summary>writeln_special: the value and a newline, in one write.</summary>
    public static void WriteLine(string path, string value)
    {
        try
        {
            File.WriteAllText(path, value + "\n");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new JailerException("Write(..)", $"Failed to write to {path}: {JailerException.IoError(e)}");
        }
    }

    [GeneratedRegex(@"^([a-z2]*)\s(?<dir>.*)\scgroup(?<ver>2?)\s(?<options>.*)\s0\s0$")]
    private static partial Regex MountLine();
}
