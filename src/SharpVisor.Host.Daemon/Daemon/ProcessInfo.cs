using System.Globalization;

namespace SharpVisor.Host.Daemon;

/// <summary>What /proc says about a process: alive or not (pid reuse checked by start time), CPU time, memory, threads.</summary>
public static class ProcessInfo
{
    /// <summary>USER_HZ: the unit of /proc's CPU times (100 on every Linux x86-64 build).</summary>
    private const double ClockTicksPerSecond = 100;

    /// <summary>The process's start time in clock ticks after boot; null when it does not exist or is a zombie.</summary>
    public static long? TryReadStartTicks(int pid)
    {
        string[]? fields = ReadStatFields(pid);
        if (fields is null || fields[0] == "Z" || fields[0] == "X")
        {
            return null;
        }

        return long.Parse(fields[19], CultureInfo.InvariantCulture);
    }

    /// <summary>True when <paramref name="pid"/> runs and is the same process (same start time) as before.</summary>
    public static bool IsAlive(int pid, long? startTicks)
    {
        long? now = TryReadStartTicks(pid);
        return now is not null && (startTicks is null || now == startTicks);
    }

    /// <summary>User plus system CPU time of all the process's threads, in seconds.</summary>
    public static double? CpuSeconds(int pid)
    {
        string[]? fields = ReadStatFields(pid);
        if (fields is null)
        {
            return null;
        }

        long user = long.Parse(fields[11], CultureInfo.InvariantCulture);
        long system = long.Parse(fields[12], CultureInfo.InvariantCulture);
        return (user + system) / ClockTicksPerSecond;
    }

    /// <summary>Resident set size in bytes.</summary>
    public static long? ResidentBytes(int pid)
    {
        try
        {
            string[] statm = File.ReadAllText($"/proc/{pid}/statm").Split(' ');
            return long.Parse(statm[1], CultureInfo.InvariantCulture) * Environment.SystemPageSize;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return null;
        }
    }

    /// <summary>Thread ids of the process whose name (comm) is <paramref name="name"/>, e.g. "vcpu0".</summary>
    public static IReadOnlyList<int> FindThreads(int pid, string name)
    {
        var threads = new List<int>();
        try
        {
            foreach (string task in Directory.EnumerateDirectories($"/proc/{pid}/task"))
            {
                try
                {
                    if (File.ReadAllText(Path.Combine(task, "comm")).TrimEnd('\n') == name
                        && int.TryParse(Path.GetFileName(task), NumberStyles.None, CultureInfo.InvariantCulture, out int tid))
                    {
                        threads.Add(tid);
                    }
                }
                catch (IOException)
                {
                    // The thread ended while we looked.
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }

        return threads;
    }

    /// <summary>The fields of /proc/PID/stat after the command name: [0] is the state letter.</summary>
    private static string[]? ReadStatFields(int pid)
    {
        string stat;
        try
        {
            stat = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        // The command name is in parentheses and may itself contain spaces or parentheses.
        int end = stat.LastIndexOf(')');
        return end < 0 ? null : stat[(end + 2)..].Split(' ');
    }
}
