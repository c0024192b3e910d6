namespace SharpVisor.Xen;

/// <summary>The hypervisor's per-vCPU state: where its vcpu_info lives, its upcall vector, timers and VIRQs.</summary>
internal sealed class XenVcpu : IDisposable
{
    public const int VirqCount = 24;

    public XenVcpu(int id, TimerCallback onTimer)
    {
        Id = id;
        Timer = new Timer(onTimer, this, Timeout.Infinite, Timeout.Infinite);
    }

    public int Id { get; }

    /// <summary>The vcpu_info's guest-physical address after VCPUOP_register_vcpu_info; 0 means the shared_info slot.</summary>
    public ulong VcpuInfoAddress { get; set; }

    /// <summary>The vector HVMOP_set_evtchn_upcall_vector gave this vCPU, or 0.</summary>
    public byte UpcallVector { get; set; }

    public bool Up { get; set; }

    /// <summary>A PV vCPU's context is set (vCPU 0 by the builder, the others by VCPUOP_initialise): Xen's is_initialised.</summary>
    public bool Initialised { get; set; }

    /// <summary>A PV vCPU's start registers from VCPUOP_initialise, until its first VCPUOP_up hands them to the accelerator.</summary>
    public Machine.VcpuState? PvStartState { get; set; }

    /// <summary>The VIRQ → port bindings of this vCPU (0 = unbound).</summary>
    public int[] VirqPorts { get; } = new int[VirqCount];

    /// <summary>The single-shot timer's deadline in system time (ns), or 0 when stopped.</summary>
    public ulong SingleShotDeadline { get; set; }

    /// <summary>The periodic timer's period in ns, or 0 when stopped.</summary>
    public ulong PeriodNs { get; set; }

    public ulong PeriodicNext { get; set; }

    /// <summary>The runstate area's guest-virtual address (VCPUOP_register_runstate_memory_area), or 0.</summary>
    public ulong RunstateAddress { get; set; }

    public Timer Timer { get; }

    /// <summary>Stops the timer and waits (briefly) for a callback in flight, which may touch guest memory.</summary>
    public void Dispose()
    {
        using var done = new ManualResetEvent(false);
        if (Timer.Dispose(done))
        {
            done.WaitOne(TimeSpan.FromSeconds(1));
        }
    }
}
