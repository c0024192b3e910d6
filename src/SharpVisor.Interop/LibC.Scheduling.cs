using System.Runtime.InteropServices;

namespace SharpVisor.Interop;

/// <summary>CPU affinity of a thread (the control plane pins vCPU threads to host CPUs).</summary>
public static unsafe partial class LibC
{
    /// <summary>sched_setaffinity(2): <paramref name="tid"/> 0 means the calling thread; the mask is a bit per CPU.</summary>
    [LibraryImport(Library, EntryPoint = "sched_setaffinity", SetLastError = true)]
    public static partial int SchedSetAffinity(int tid, nuint maskSize, ulong* mask);

    [LibraryImport(Library, EntryPoint = "sched_getaffinity", SetLastError = true)]
    public static partial int SchedGetAffinity(int tid, nuint maskSize, ulong* mask);
}
