namespace SharpVisor.Host.Tests;

/// <summary>
/// A cgroup value a jailer test can ask for on this host: a controller the hierarchy offers and a
/// file of it (cgroup v2: pids, cpu or hugetlb, whichever the unified hierarchy has; v1: the cpu
/// controller's cpu.shares), and where the jailer will create the microVM's cgroup.
/// </summary>
internal sealed record JailerCgroup(int Version, string Hierarchy, string File, string Value)
{
    /// <summary>Under this parent (--parent-cgroup), so tests never touch another user's cgroups.</summary>
    public const string Parent = "sv-jailer-test";

    /// <summary>A v2 choice when <paramref name="preferVersion"/> is 2 and the host has one, else v1, else the other.</summary>
    public static JailerCgroup? Find(int preferVersion)
    {
        JailerCgroup? v2 = FindV2();
        JailerCgroup? v1 = FindV1();
        return preferVersion == 2 ? v2 ?? v1 : v1 ?? v2;
    }

    /// <summary>The cgroup directory the jailer makes for <paramref name="id"/>.</summary>
    public string Directory(string id) => Path.Combine(Hierarchy, Parent, id);

    /// <summary>The line /proc/PID/cgroup shows for a process in <paramref name="id"/>'s cgroup.</summary>
    public bool ListsProcessIn(string procCgroup, string id) =>
        procCgroup.Split('\n').Any(line =>
            line.EndsWith($":/{Parent}/{id}", StringComparison.Ordinal)
            && (Version == 2 ? line.StartsWith("0::", StringComparison.Ordinal) : line.Split(':')[1].Split(',').Contains("cpu")));

    /// <summary>Removes the test's cgroups once their processes are gone (best effort: a leftover is harmless).</summary>
    public void Remove(string id)
    {
        foreach (string directory in new[] { Directory(id), Path.Combine(Hierarchy, Parent) })
        {
            for (int attempt = 0; attempt < 50; attempt++)
            {
                try
                {
                    if (System.IO.Directory.Exists(directory))
                    {
                        System.IO.Directory.Delete(directory);
                    }

                    break;
                }
                catch (IOException)
                {
                    Thread.Sleep(100);
                }
            }
        }
    }

    private static JailerCgroup? FindV2()
    {
        string? unified = Mounts().Where(m => m.Type == "cgroup2").Select(m => m.Directory).FirstOrDefault();
        if (unified is null)
        {
            return null;
        }

        string[] controllers = System.IO.File.ReadAllText(Path.Combine(unified, "cgroup.controllers")).Split([' ', '\n'], StringSplitOptions.RemoveEmptyEntries);
        if (controllers.Contains("pids"))
        {
            return new JailerCgroup(2, unified, "pids.max", "77");
        }

        if (controllers.Contains("cpu"))
        {
            return new JailerCgroup(2, unified, "cpu.weight", "42");
        }

        if (controllers.Contains("hugetlb") && System.IO.Directory.Exists("/sys/kernel/mm/hugepages/hugepages-2048kB"))
        {
            return new JailerCgroup(2, unified, "hugetlb.2MB.max", "4194304");
        }

        return null;
    }

    private static JailerCgroup? FindV1()
    {
        string? cpu = Mounts().Where(m => m.Type == "cgroup" && m.Options.Split(',').Contains("cpu")).Select(m => m.Directory).FirstOrDefault();
        return cpu is null ? null : new JailerCgroup(1, cpu, "cpu.shares", "512");
    }

    private static IEnumerable<(string Directory, string Type, string Options)> Mounts() =>
        System.IO.File.ReadAllLines("/proc/mounts")
            .Select(line => line.Split(' '))
            .Where(fields => fields.Length >= 4)
            .Select(fields => (fields[1], fields[2], fields[3]));
}
