using System.Runtime.InteropServices;

namespace SharpVisor.Bench.ExitLatency;

/// <summary>clock_gettime(CLOCK_THREAD_CPUTIME_ID): CPU time of the calling thread, as kvm-exit.c measures it.</summary>
public static partial class ThreadCpuClock
{
    private const int ClockThreadCpuTimeId = 3;

    public static unsafe long Nanoseconds()
    {
        Timespec time;
        if (ClockGettime(ClockThreadCpuTimeId, &time) != 0)
        {
            throw new InvalidOperationException("clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
        }

        return (time.Seconds * 1_000_000_000L) + time.Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static unsafe partial int ClockGettime(int clock, Timespec* time);

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }
}
