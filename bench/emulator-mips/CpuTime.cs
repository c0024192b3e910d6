using System.Runtime.InteropServices;

namespace SharpVisor.Bench.EmulatorMips;

/// <summary>
/// CPU time of the calling thread and of reaped child processes: on a shared machine the wall
/// clock counts time spent waiting for a core, CPU time does not.
/// </summary>
internal static partial class CpuTime
{
    private const int ClockThreadCpuTime = 3;
    private const int RusageChildren = -1;

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct Rusage
    {
        public long UserSeconds;
        public long UserMicroseconds;
        public long SystemSeconds;
        public long SystemMicroseconds;

        // The rest of struct rusage (14 longs) is not read.
        public unsafe fixed long Rest[14];
    }

    [LibraryImport("libc", EntryPoint = "clock_gettime", SetLastError = true)]
    private static partial int ClockGetTime(int clock, out TimeSpec time);

    [LibraryImport("libc", EntryPoint = "getrusage", SetLastError = true)]
    private static partial int GetRusage(int who, out Rusage usage);

    /// <summary>Seconds of CPU the calling thread has used.</summary>
    public static double Thread()
    {
        if (ClockGetTime(ClockThreadCpuTime, out TimeSpec t) != 0)
        {
            throw new InvalidOperationException($"clock_gettime failed: errno {Marshal.GetLastPInvokeError()}");
        }

        return t.Seconds + (t.Nanoseconds / 1e9);
    }

    /// <summary>Seconds of CPU (user + system) used by every child process reaped so far.</summary>
    public static double Children()
    {
        if (GetRusage(RusageChildren, out Rusage u) != 0)
        {
            throw new InvalidOperationException($"getrusage failed: errno {Marshal.GetLastPInvokeError()}");
        }

        return u.UserSeconds + (u.UserMicroseconds / 1e6) + u.SystemSeconds + (u.SystemMicroseconds / 1e6);
    }
}
