using SharpVisor.Machine;

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

    /// <summary>GSIs a callback via may name: the I/O APIC's pins (Xen takes the low byte and checks it against the domain's GSIs).</summary>
    private const uint MaxCallbackGsi = 48;

    private readonly ulong[] _params = new ulong[HvmParam.Count];
    private readonly object _callbackLock = new();
    private IInterruptController? _interrupts;
    private Func<int, int, int, uint?>? _pciIntxRoute;

    /// <summary>The GSI of a GSI or PCI INTx callback via, when it resolved to one; and whether this side drives it now.</summary>
    private uint? _callbackGsi;
    private bool _callbackAsserted;

    /// <summary>
    /// Lets a GSI or PCI INTx callback via (HVM_PARAM_CALLBACK_IRQ types 0 and 1) deliver: the
    /// line follows vCPU 0's evtchn_upcall_pending, as Xen's does, while vCPU 0 has no per-vCPU
    /// upcall vector. <paramref name="pciIntxRoute"/> maps (bus, devfn, INTx 0-3) to the GSI the
    /// machine routes that pin to, or null when nothing is there.
    /// </summary>
    public void AttachInterruptController(IInterruptController interrupts, Func<int, int, int, uint?>? pciIntxRoute = null)
    {
        ArgumentNullException.ThrowIfNull(interrupts);
        lock (_callbackLock)
        {
            _interrupts = interrupts;
            _pciIntxRoute = pciIntxRoute;
        }
    }

    /// <summary>The GSI the callback via drives, if it is a GSI or PCI INTx one that resolved (for tests and logs).</summary>
    public uint? CallbackGsi
    {
        get
        {
            lock (_callbackLock)
            {
                return _callbackGsi;
            }
        }
    }

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
                    // Linux sets GSI 1 once its per-vCPU vectors are in place ("trick toolstack to
                    // think we are enlightened"): the per-vCPU vector then takes precedence, as in Xen.
                    Counters.Increment("callback-via-irq");
                }

                SetParam(HvmParam.CallbackIrq, value);
                SetCallbackVia(value);
                AssistCallbackVia(value);
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
                AssistUpcallVector((int)vcpuId, vector);
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

    /// <summary>
    /// Resolves a GSI or PCI INTx via to the GSI it drives (Xen: GSI 0 or one the machine does not
    /// have, or an INTx nothing is routed to, means no callback) and moves the line there.
    /// </summary>
    private void SetCallbackVia(ulong value)
    {
        lock (_callbackLock)
        {
            ulong type = value >> HvmParam.CallbackTypeShift;
            uint? gsi = null;
            if (value != 0 && type == HvmParam.CallbackTypeGsi)
            {
                uint requested = (uint)(value & 0xFFFF_FFFF);
                gsi = requested is > 0 and < MaxCallbackGsi ? requested : null;
            }
            else if (type == HvmParam.CallbackTypePciIntx)
            {
                // val[47:32] segment, [31:16] bus, [15:8] devfn, [1:0] INTx#.
                int segment = (int)((value >> 32) & 0xFFFF);
                int bus = (int)((value >> 16) & 0xFFFF);
                gsi = segment == 0 && bus <= 0xFF ? _pciIntxRoute?.Invoke(bus, (int)((value >> 8) & 0xFF), (int)(value & 3)) : null;
            }

            if (_callbackAsserted && _callbackGsi != gsi)
            {
                _interrupts?.SetIrqLevel(_callbackGsi!.Value, false);
                _callbackAsserted = false;
            }

            _callbackGsi = _interrupts is null ? null : gsi;
        }

        UpdateCallbackLine();
    }

    /// <summary>Drives the callback GSI to vCPU 0's upcall_pending (when no per-vCPU vector takes precedence).</summary>
    private void UpdateCallbackLine()
    {
        if (_callbackGsi is null || _vcpus.Length == 0)
        {
            return;
        }

        XenVcpu vcpu = _vcpus[0];
        ulong info = VcpuInfoAddress(vcpu);
        bool level = vcpu.UpcallVector == 0 && info != 0 && Volatile.Read(ref Byte(info + SharedInfoLayout.UpcallPending)) != 0;
        lock (_callbackLock)
        {
            if (_callbackGsi is not { } gsi || level == _callbackAsserted)
            {
                return;
            }

            _callbackAsserted = level;
            _interrupts!.SetIrqLevel(gsi, level);
            if (level)
            {
                Counters.Increment("callback-gsi-asserts");
            }
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
