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

    /// <summary>
    /// Puts the vCPU in its INIT state, waiting for a start-up IPI, as an application processor
    /// after power-on (the VMM's ACPI S3 resume leaves the APs so, as firmware does). Call while
    /// the vCPU is not running; a later <see cref="SetState"/> makes it runnable again.
    /// </summary>
    void EnterWaitForStartup();

    VcpuExit Run();

    /// <summary>
    /// Makes <see cref="Run"/> return <see cref="VcpuExitReason.Stopped"/> soon (or at once, if it
    /// has not entered the guest yet); callable from any thread. The runner then decides whether
    /// the machine is stopping or pausing.
    /// </summary>
    void Kick();
}
