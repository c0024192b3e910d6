namespace SharpVisor.Machine;

/// <summary>
/// One virtual CPU. <see cref="Run"/> blocks on the calling thread (one vCPU, one thread),
/// dispatching port-I/O and MMIO exits to the machine's buses, and returns only when the
/// vCPU can run no further or a stop was requested.
/// </summary>
public interface IVcpu : IDisposable
{
    int Id { get; }

    /// <summary>Exit counts by reason for this vCPU (io, mmio, hlt, ...).</summary>
    ExitCounters Exits { get; }

    VcpuState GetState();

    void SetState(VcpuState state);

    VcpuExit Run();

    /// <summary>
    /// Makes <see cref="Run"/> return <see cref="VcpuExitReason.Stopped"/> soon (or at once, if it
    /// has not entered the guest yet); callable from any thread. The runner then decides whether
    /// the machine is stopping or pausing.
    /// </summary>
    void Kick();
}
