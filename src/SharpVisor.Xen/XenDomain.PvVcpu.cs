using SharpVisor.Xen.Pv;

namespace SharpVisor.Xen;

/// <summary>
/// PV SMP in the domain: VCPUOP_initialise (the context checked by <see cref="PvCpu"/>), up, down
/// (the accelerator starts and parks the vCPU), and TLB flushes that reach every vCPU.
/// </summary>
public sealed partial class XenDomain
{
    /// <summary>VCPUOP_initialise(vcpu, struct vcpu_guest_context *): once per vCPU (-EEXIST after), Xen's default_initialise_vcpu.</summary>
    private long PvInitialiseVcpu(HypercallFrame frame, XenVcpu vcpu, ulong arg)
    {
        byte[] bytes = new byte[PvVcpuGuestContext.Size];
        frame.ReadBytes(arg, bytes);
        lock (vcpu)
        {
            if (vcpu.Initialised)
            {
                return -XenErrno.EEXIST;
            }

            long rc = _pvCpu!.InitialiseVcpu(vcpu.Id, new PvVcpuGuestContext(bytes), out Machine.VcpuState? state);
            if (rc == 0)
            {
                vcpu.Initialised = true;
                vcpu.PvStartState = state;
            }

            return rc;
        }
    }

    /// <summary>
    /// VCPUOP_up: -EINVAL before VCPUOP_initialise; the first up starts the vCPU with its context
    /// (or in its failsafe callback when the context's data selectors do not load, as Xen's first
    /// context switch into it does), a later one resumes it.
    /// </summary>
    private long PvVcpuUp(XenVcpu vcpu)
    {
        Machine.VcpuState? start;
        lock (vcpu)
        {
            if (!vcpu.Initialised)
            {
                return -XenErrno.EINVAL;
            }

            if (vcpu.Up)
            {
                return 0;
            }

            vcpu.Up = true;
            start = vcpu.PvStartState;
            vcpu.PvStartState = null;
        }

        if (start is not null)
        {
            start = _pvCpu!.LoadSegmentsAtStart(vcpu.Id, start);
            if (start is null)
            {
                return 0;                        // the domain is crashed: the vCPU never runs
            }
        }

        Counters.Increment("vcpu-up");
        Host.StartVcpu(vcpu.Id, start);
        return 0;
    }

    /// <summary>VCPUOP_down: the vCPU is parked (itself: once this hypercall returns); the last one going down powers the domain off, as Xen does.</summary>
    private long PvVcpuDown(XenVcpu vcpu)
    {
        bool last;
        lock (_lock)
        {
            last = !_vcpus.Any(v => v != vcpu && v.Up);
            if (!last && !vcpu.Up)
            {
                return 0;
            }

            if (!last)
            {
                vcpu.Up = false;
            }
        }

        if (last)
        {
            return Shutdown(ShutdownPoweroff, stop: true);
        }

        Counters.Increment("vcpu-down");
        Host.StopVcpu(vcpu.Id);
        return 0;
    }

    /// <summary>A TLB flush for every vCPU but <paramref name="callerVcpuId"/> (which flushed its own; -1: not a vCPU's thread): the others' translations go before they run on.</summary>
    /// <summary>Xen's domain_crash from outside a vCPU's own path (a vCPU that cannot start): the machine stops as crashed.</summary>
    internal void CrashPvDomain(string reason) => Host.Control.Crash($"Xen PV: {reason}");

    internal void FlushOtherVcpus(int callerVcpuId)
    {
        if (_host is null)
        {
            return;
        }

        for (int i = 0; i < _vcpus.Length; i++)
        {
            if (i != callerVcpuId)
            {
                _host.FlushVcpuTlb(i, callerVcpuId);
            }
        }
    }
}
