using System.Globalization;
using SharpVisor.Host.Http;

namespace SharpVisor.Host.Scheduling;

/// <summary>Host CPU lists as xl writes them: "all", "3", "0-1,3".</summary>
public static class CpuList
{
    public static IReadOnlyList<int> Parse(string text, int cpuCount)
    {
        text = text.Trim();
        if (text == "all")
        {
            return Enumerable.Range(0, cpuCount).ToList();
        }

        var cpus = new SortedSet<int>();
        foreach (string part in text.Split(','))
        {
            string[] bounds = part.Trim().Split('-');
            if (bounds.Length is < 1 or > 2 || !TryCpu(bounds[0], out int first) || !TryCpu(bounds[^1], out int last) || last < first)
            {
                throw ApiException.BadRequest($"CPU list '{text}' is not like 'all', '3' or '0-1,3'");
            }

            if (last >= cpuCount)
            {
                throw ApiException.BadRequest($"CPU {last} does not exist (this host has CPUs 0-{cpuCount - 1})");
            }

            for (int cpu = first; cpu <= last; cpu++)
            {
                cpus.Add(cpu);
            }
        }

        return cpus.ToList();
    }

    public static string Format(IEnumerable<int> cpus) => string.Join(',', cpus);

    private static bool TryCpu(string text, out int cpu) =>
        int.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out cpu) && cpu < 4096;
}
