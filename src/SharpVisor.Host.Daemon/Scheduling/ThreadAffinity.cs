using SharpVisor.Interop;

namespace SharpVisor.Host.Scheduling;

/// <summary>Pins a thread (of any process we may signal) to a set of host CPUs.</summary>
public static unsafe class ThreadAffinity
{
    private const int MaskWords = 64;

    public static void Set(int tid, IReadOnlyList<int> cpus)
    {
        ulong* mask = stackalloc ulong[MaskWords];
        new Span<ulong>(mask, MaskWords).Clear();
        foreach (int cpu in cpus)
        {
            mask[cpu / 64] |= 1UL << (cpu % 64);
        }

        LinuxException.ThrowIfFailed(LibC.SchedSetAffinity(tid, MaskWords * sizeof(ulong), mask), $"sched_setaffinity({tid})");
    }

    public static IReadOnlyList<int> Get(int tid)
    {
        ulong* mask = stackalloc ulong[MaskWords];
        LinuxException.ThrowIfFailed(LibC.SchedGetAffinity(tid, MaskWords * sizeof(ulong), mask), $"sched_getaffinity({tid})");
        var cpus = new List<int>();
        for (int cpu = 0; cpu < MaskWords * 64; cpu++)
        {
            if ((mask[cpu / 64] & (1UL << (cpu % 64))) != 0)
            {
                cpus.Add(cpu);
            }
        }

        return cpus;
    }
}
