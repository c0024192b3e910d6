namespace SharpVisor.Xen;

public sealed partial class XenDomain
{
    private const int HvmOpSetParam = 0;
    private const int HvmOpGetParam = 1;
    private const int HvmOpPagetableDying = 9;
    private const int HvmOpGetTime = 10;
    private const int HvmOpSetEvtchnUpcallVector = 23;

    /// <summary>The lowest vector an upcall may use: 0-15 are exceptions.</summary>
    private const int MinimumUpcallVector = 0x10;

    private readonly ulong[] _params = new ulong[HvmParam.Count];

    /// <summary>An HVM parameter, for the builder (store/console event channels) and tests.</summary>
    public ulong GetParam(int index) => Volatile.Read(ref _params[index]);

    public void SetParam(int index, ulong value) => Volatile.Write(ref _params[index], value);

    private long HvmOp(HypercallFrame frame)
    {
        int command = frame.IntArgument(0);
        ulong arg = frame.Argument(1);
        switch (command)
        {
            case HvmOpSetParam:
            case HvmOpGetParam:
            {
                // struct xen_hvm_param { domid_t domid; uint32_t index; uint64_t value; }
                CheckSelf(frame.Read<ushort>(arg));
                uint index = frame.Read<uint>(arg + 4);
                if (index >= HvmParam.Count)
                {
                    throw new XenException(XenErrno.EINVAL, $"HVM param {index} does not exist");
                }

                if (command == HvmOpGetParam)
                {
                    frame.Write(arg + 8, GetParam((int)index));
                    return 0;
                }

                ulong value = frame.Read<ulong>(arg + 8);
                if (index != HvmParam.CallbackIrq)
                {
                    // The toolstack's parameters (store, console, ...) are read-only for the guest.
                    throw new XenException(XenErrno.EPERM, $"HVM param {index} is not the guest's to set");
                }

                ulong type = value >> HvmParam.CallbackTypeShift;
                if (type == HvmParam.CallbackTypeVector && (value & 0xFF) < MinimumUpcallVector)
                {
                    throw new XenException(XenErrno.EINVAL, $"callback vector {value & 0xFF} is an exception vector");
                }

                if (type > HvmParam.CallbackTypeVector)
                {
                    throw new XenException(XenErrno.EINVAL, $"callback via type {type} does not exist");
                }

                if (value != 0 && type != HvmParam.CallbackTypeVector)
                {
                    // A GSI or PCI INTx callback is recorded (Linux sets GSI 1 once its per-vCPU
                    // vectors are in place) but delivers nothing without the platform device.
                    Counters.Increment("callback-via-irq");
                }

                SetParam(HvmParam.CallbackIrq, value);
                KickAllVcpus();
                return 0;
            }

            case HvmOpSetEvtchnUpcallVector:
            {
                uint vcpuId = frame.Read<uint>(arg);
                byte vector = frame.Read<byte>(arg + 4);
                CheckVcpu(vcpuId);
                if (vector < MinimumUpcallVector)
                {
                    throw new XenException(XenErrno.EINVAL, $"upcall vector {vector} is an exception vector");
                }

                _vcpus[vcpuId].UpcallVector = vector;
                Host.WakeVcpu((int)vcpuId);
                return 0;
            }

            case HvmOpGetTime:
                frame.Write(arg, SystemTimeNow());
                return 0;

            case HvmOpPagetableDying:
            default:
                return Unknown(frame, "hvm_op command", command);
        }
    }

    private void KickAllVcpus()
    {
        foreach (XenVcpu vcpu in _vcpus)
        {
            _host?.WakeVcpu(vcpu.Id);
        }
    }
}
