using System.Globalization;
using SharpVisor.Host.Daemon;
using SharpVisor.Host.Http;

namespace SharpVisor.Host.Scheduling;

/// <summary>
/// Enforces the credit scheduler's weight and cap with the kernel's CPU controller: one
/// cgroup per domain holding its VMM process and so every vCPU thread. cgroup v2
/// (cpu.weight, cpu.max) where its CPU controller is available, else v1 (cpu.shares,
/// cpu.cfs_quota_us) — hosts with the hybrid layout have only the v1 one.
/// </summary>
public sealed class CgroupCpuController
{
    public const int PeriodMicroseconds = 100_000;

    private CgroupCpuController(CgroupVersion version, string parent)
    {
        Version = version;
        Parent = parent;
    }

    public CgroupVersion Version { get; }

    /// <summary>The directory holding one cgroup per domain, e.g. /sys/fs/cgroup/sharpvisor.</summary>
    public string Parent { get; }

    /// <summary>
    /// Finds a writable CPU controller and prepares <paramref name="groupName"/> under it; null
    /// (with the reason) when this host offers none, in which case `sched` answers with that reason.
    /// </summary>
    public static CgroupCpuController? TryCreate(string groupName, out string? reason)
    {
        foreach (string mount in new[] { "/sys/fs/cgroup", "/sys/fs/cgroup/unified" })
        {
            string controllers = Path.Combine(mount, "cgroup.controllers");
            if (File.Exists(controllers) && File.ReadAllText(controllers).Split(' ', '\n').Contains("cpu"))
            {
                try
                {
                    WriteIfNeeded(Path.Combine(mount, "cgroup.subtree_control"), "+cpu");
                    string parent = Path.Combine(mount, groupName);
                    Directory.CreateDirectory(parent);
                    WriteIfNeeded(Path.Combine(parent, "cgroup.subtree_control"), "+cpu");
                    reason = null;
                    return new CgroupCpuController(CgroupVersion.V2, parent);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    reason = $"the cgroup v2 CPU controller at {mount} is not writable: {e.Message}";
                    return null;
                }
            }
        }

        foreach (string mount in new[] { "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct" })
        {
            if (File.Exists(Path.Combine(mount, "cpu.shares")))
            {
                try
                {
                    string parent = Path.Combine(mount, groupName);
                    Directory.CreateDirectory(parent);
                    reason = null;
                    return new CgroupCpuController(CgroupVersion.V1, parent);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    reason = $"the cgroup v1 CPU controller at {mount} is not writable: {e.Message}";
                    return null;
                }
            }
        }

        reason = "this host has no cgroup CPU controller (neither v2 cpu nor v1 cpu is mounted)";
        return null;
    }

    /// <summary>cgroup v2 cpu.weight (1-10000, default 100) for a Xen weight (1-65535, default 256).</summary>
    public static int WeightToCpuWeight(int weight) => Math.Clamp((int)Math.Round(weight * 100.0 / DomainSchedule.DefaultWeight), 1, 10_000);

    /// <summary>cgroup v1 cpu.shares (default 1024) for a Xen weight (default 256).</summary>
    public static int WeightToCpuShares(int weight) => Math.Max(2, weight * 1024 / DomainSchedule.DefaultWeight);

    /// <summary>CPU time per <see cref="PeriodMicroseconds"/> for a cap in percent of one CPU; null for no cap.</summary>
    public static long? CapToQuota(int cap) => cap == 0 ? null : (long)cap * PeriodMicroseconds / 100;

    public string GroupPath(int domainId) => Path.Combine(Parent, "dom" + domainId.ToString(CultureInfo.InvariantCulture));

    /// <summary>Puts the domain's VMM process (all its threads) in the domain's cgroup.</summary>
    public void Attach(int domainId, int pid)
    {
        string group = GroupPath(domainId);
        Directory.CreateDirectory(group);
        Write(Path.Combine(group, "cgroup.procs"), pid.ToString(CultureInfo.InvariantCulture));
    }

    public void Apply(int domainId, DomainSchedule schedule)
    {
        string group = GroupPath(domainId);
        Directory.CreateDirectory(group);
        long? quota = CapToQuota(schedule.Cap);
        if (Version == CgroupVersion.V2)
        {
            Write(Path.Combine(group, "cpu.weight"), WeightToCpuWeight(schedule.Weight).ToString(CultureInfo.InvariantCulture));
            Write(Path.Combine(group, "cpu.max"), $"{(quota is long q ? q.ToString(CultureInfo.InvariantCulture) : "max")} {PeriodMicroseconds}");
        }
        else
        {
            Write(Path.Combine(group, "cpu.shares"), WeightToCpuShares(schedule.Weight).ToString(CultureInfo.InvariantCulture));
            Write(Path.Combine(group, "cpu.cfs_period_us"), PeriodMicroseconds.ToString(CultureInfo.InvariantCulture));
            Write(Path.Combine(group, "cpu.cfs_quota_us"), (quota ?? -1).ToString(CultureInfo.InvariantCulture));
        }
    }

    /// <summary>Pids in the domain's cgroup.</summary>
    public IReadOnlyList<int> Processes(int domainId)
    {
        string procs = Path.Combine(GroupPath(domainId), "cgroup.procs");
        if (!File.Exists(procs))
        {
            return [];
        }

        return File.ReadAllLines(procs).Where(l => l.Length > 0).Select(l => int.Parse(l, CultureInfo.InvariantCulture)).ToList();
    }

    /// <summary>Removes the domain's (empty) cgroup; a failure is left for the administrator, never fatal.</summary>
    public void Remove(int domainId)
    {
        try
        {
            string group = GroupPath(domainId);
            if (Directory.Exists(group))
            {
                Directory.Delete(group);
            }
        }
        catch (IOException)
        {
        }
    }

    /// <summary>Removes the parent group when no domain group is left in it (tests use their own parent).</summary>
    public void RemoveParentIfEmpty()
    {
        try
        {
            if (Directory.Exists(Parent) && !Directory.EnumerateDirectories(Parent).Any())
            {
                Directory.Delete(Parent);
            }
        }
        catch (IOException)
        {
        }
    }

    private static void Write(string path, string value)
    {
        try
        {
            File.WriteAllText(path, value);
        }
        catch (IOException e)
        {
            throw ApiException.BadRequest($"cannot write '{value}' to {path}: {e.Message}");
        }
    }

    private static void WriteIfNeeded(string subtreeControl, string value)
    {
        if (!File.ReadAllText(subtreeControl).Split(' ', '\n').Contains(value.TrimStart('+')))
        {
            File.WriteAllText(subtreeControl, value);
        }
    }
}
