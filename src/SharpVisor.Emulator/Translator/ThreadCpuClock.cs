using System.Diagnostics;
using System.Runtime.InteropServices;

namespace SharpVisor.Emulator.Translator;

/// <summary>
/// CPU time of the calling thread (Linux CLOCK_THREAD_CPUTIME_ID), in Stopwatch ticks: the
/// compiler's cost, which a wall clock inflates on a loaded host (the compiler thread runs below
/// normal priority and waits for a core). Falls back to the wall clock where the call fails.
/// </summary>
internal static partial class ThreadCpuClock
{
    private const int ClockThreadCpuTime = 3;

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clock, out TimeSpec time);

    /// <summary>Now, in <see cref="Stopwatch"/> ticks of the thread's CPU time (or of the wall clock).</summary>
    public static long Now()
    {
        try
        {
            if (OperatingSystem.IsLinux() && ClockGetTime(ClockThreadCpuTime, out TimeSpec t) == 0)
            {
                return (long)(((t.Seconds * 1_000_000_000.0) + t.Nanoseconds) * Stopwatch.Frequency / 1_000_000_000.0);
            }
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
        }

        return Stopwatch.GetTimestamp();
    }
}
