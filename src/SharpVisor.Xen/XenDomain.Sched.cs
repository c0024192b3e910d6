using SharpVisor.Machine;

namespace SharpVisor.Xen;

public sealed partial class XenDomain
{
    private const int SchedYield = 0;
    private const int SchedBlock = 1;
    private const int SchedShutdown = 2;
    private const int SchedPoll = 3;
    private const int SchedRemoteShutdown = 4;
    private const int SchedShutdownCode = 5;

    private const uint ShutdownPoweroff = 0;
    private const uint ShutdownReboot = 1;
    private const uint ShutdownSuspend = 2;
    private const uint ShutdownCrash = 3;
    private const uint ShutdownWatchdog = 4;
    private const uint ShutdownSoftReset = 5;

    /// <summary>The reason of the guest's last SCHEDOP_shutdown (Xen's SHUTDOWN_*), or null.</summary>
    public uint? ShutdownReason { get; private set; }

    private long SchedOp(HypercallFrame frame)
    {
        int command = frame.IntArgument(0);
        ulong arg = frame.Argument(1);
        switch (command)
        {
            case SchedYield:
                return 0;

            case SchedBlock:
            {
                // Block with events enabled: the upcall (or any interrupt) wakes the vCPU.
                XenVcpu vcpu = _vcpus[frame.VcpuId];
                ulong info = VcpuInfoAddress(vcpu);
                if (info != 0)
                {
                    Volatile.Write(ref Byte(info + SharedInfoLayout.UpcallMask), 0);
                    if (Volatile.Read(ref Byte(info + SharedInfoLayout.UpcallPending)) != 0)
                    {
                        return 0;
                    }
                }

                frame.Context.Halt();
                return 0;
            }

            case SchedPoll:
                // A poll may return early (the guest rechecks its condition): no wait here.
                return 0;

            case SchedShutdown:
            case SchedShutdownCode:
                return Shutdown(frame.Read<uint>(arg), command == SchedShutdown);

            case SchedRemoteShutdown:
            {
                // struct sched_remote_shutdown { domid_t domain_id; unsigned int reason; }
                CheckSelf(frame.Read<ushort>(arg));
                return Shutdown(frame.Read<uint>(arg + 4), stop: true);
            }

            default:
                return Unknown(frame, "sched_op command", command);
        }
    }

    private long Shutdown(uint reason, bool stop)
    {
        if (reason > ShutdownSoftReset)
        {
            throw new XenException(XenErrno.EINVAL, $"shutdown reason {reason} does not exist");
        }

        ShutdownReason = reason;
        Counters.Increment($"shutdown-{reason}");
        if (!stop)
        {
            return 0;   // SHUTDOWN_code only records the reason for a later shutdown
        }

        MachineControl control = Host.Control;
        switch (reason)
        {
            case ShutdownPoweroff:
                control.PowerOff("Xen guest shut down (poweroff)");
                break;
            case ShutdownReboot:
            case ShutdownSoftReset:
                control.Reset("Xen guest shut down (reboot)");
                break;
            case ShutdownSuspend:
                return -XenErrno.ENOSYS;   // suspend needs save/restore of the Xen state
            case ShutdownCrash:
            case ShutdownWatchdog:
                control.Crash(reason == ShutdownCrash ? "Xen guest crashed (SHUTDOWN_crash)" : "Xen guest's watchdog fired");
                break;
        }

        return 0;
    }
}
