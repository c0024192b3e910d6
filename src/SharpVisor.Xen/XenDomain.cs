using SharpVisor.Machine;
using SharpVisor.Machine.Hypervisor;
using SharpVisor.Memory;
using SharpVisor.Xen.Pv;

namespace SharpVisor.Xen;

/// <summary>
/// One Xen domain as its hypervisor sees it: the <see cref="IHypervisorInterface"/> an accelerator
/// routes CPUID 0x40000000+, MSR 0x40000000 and VMCALL/VMMCALL to. It dispatches hypercalls (every
/// guest argument goes through <see cref="HypercallFrame"/>), keeps the shared_info and vcpu_info
/// pages, the event channels, the HVM params and the timers, and raises the upcall vector.
/// </summary>
public sealed partial class XenDomain : IHypervisorInterface, IDisposable
{
    private readonly XenDomainOptions _options;
    private readonly XenVcpu[] _vcpus;
    private readonly object _lock = new();
    private readonly HashSet<ulong> _unknownLogged = [];
    private IHypervisorHost? _host;
    private (uint Multiplier, sbyte Shift) _scale;
    private bool _disposed;

    public XenDomain(GuestMemory memory, XenDomainOptions options)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(options);
        if (options.VcpuCount < 1 || options.VcpuCount > SharedInfoLayout.LegacyVcpus * 4)
        {
            throw new ArgumentOutOfRangeException(nameof(options), $"{options.VcpuCount} vCPUs: a Xen domain here has 1..128");
        }

        Memory = memory;
        _options = options;
        _vcpus = new XenVcpu[options.VcpuCount];
        for (int i = 0; i < _vcpus.Length; i++)
        {
            _vcpus[i] = new XenVcpu(i, OnTimer) { Up = i == 0, Initialised = i == 0 };
        }

        _channels = new EventChannel?[SharedInfoLayout.MaxPorts];
        _params[HvmParam.ConsolePfn] = options.ConsolePfn;
        _params[HvmParam.StorePfn] = options.StorePfn;
    }

    public GuestMemory Memory { get; }

    public ushort DomainId => _options.DomainId;

    /// <summary>Hypercalls by op ("xen_version", "event_channel_op:send", ...), upcalls, sends, unknown ops.</summary>
    public ExitCounters Counters { get; } = new();

    public void Connect(IHypervisorHost host)
    {
        ArgumentNullException.ThrowIfNull(host);
        _host = host;
        _scale = PvClock.Scale(host.TscFrequencyHz);
    }

    private IHypervisorHost Host => _host ?? throw new InvalidOperationException("the Xen domain is not connected to an accelerator");

    public bool TryGetCpuid(int vcpuId, uint leaf, uint subleaf, out CpuidResult result) => XenCpuid.TryGetLeaf(leaf, vcpuId, out result);

    public bool TryReadMsr(int vcpuId, uint index, out ulong value)
    {
        // The hypercall-page MSR is write-only on Xen: a read raises #GP.
        value = 0;
        return false;
    }

    public bool TryWriteMsr(int vcpuId, uint index, ulong value, out bool accepted)
    {
        accepted = false;
        if (index != XenCpuid.HypercallPageMsr)
        {
            return false;
        }

        // Bits 11:0 pick the page (only page 0 exists); the rest is its guest-physical address.
        ulong address = value & ~0xFFFUL;
        if ((value & 0xFFF) != 0 || !Memory.IsValid(address, HypercallPage.Size))
        {
            Warn($"vCPU {vcpuId}: hypercall page MSR write 0x{value:x} refused");
            return true;
        }

        Memory.Write(address, HypercallPage.Build(Host.Instruction));
        Counters.Increment("hypercall-page");
        accepted = true;
        return true;
    }

    public void Hypercall(IHypercallContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        RunHypercall(context, context.Cpl != 0);
    }

    /// <summary>Runs one hypercall; <paramref name="refuse"/> answers -EPERM (a caller in user mode).</summary>
    private void RunHypercall(IHypercallContext context, bool refuse)
    {
        var frame = new HypercallFrame(context, Memory) { FrameOwner = _pvTables is { } pv ? pv.Owns : null };
        Counters.Increment("hypercalls");
        long result;
        try
        {
            result = refuse ? -XenErrno.EPERM : Dispatch(frame);
        }
        catch (GuestMemoryException e)
        {
            // A safety net: guest addresses are checked before use, so this is a bug of ours — the
            // guest gets -EFAULT and the host carries on.
            result = -XenErrno.EFAULT;
            Counters.Increment("hypercall-memory-faults");
            Warn($"vCPU {context.VcpuId}: {OpName(frame.Op)}: {e.Message}");
        }
        catch (XenException e)
        {
            result = -e.Errno;
            Counters.Increment("hypercall-errors");
            if (_options.Log is not null && Counters["hypercall-errors"] <= 20)
            {
                Warn($"vCPU {context.VcpuId}: {OpName(frame.Op)} failed: -{e.Errno} ({e.Message})");
            }
        }

        context.SetRegister(0, context.LongMode ? (ulong)result : (uint)result);
    }

    private long Dispatch(HypercallFrame frame)
    {
        if (frame.Op > int.MaxValue)
        {
            return Unknown(frame, "op");
        }

        var op = (HypercallOp)frame.Op;
        Counters.Increment(OpName(frame.Op));
        return op switch
        {
            HypercallOp.XenVersion => XenVersion(frame),
            HypercallOp.MemoryOp => _pvTables is not null && TryPvMemoryOp(frame, out long pvResult) ? pvResult : MemoryOp(frame),
            HypercallOp.HvmOp => HvmOp(frame),
            HypercallOp.VcpuOp => VcpuOp(frame),
            HypercallOp.EventChannelOp => EventChannelOp(frame),
            HypercallOp.SchedOp => SchedOp(frame),
            HypercallOp.SetTimerOp => SetTimerOp(frame),
            HypercallOp.ConsoleIo => ConsoleIo(frame),
            HypercallOp.GrantTableOp => GrantTableOp(frame),
            HypercallOp.MmuUpdate => MmuUpdate(frame),
            HypercallOp.UpdateVaMapping => UpdateVaMapping(frame),
            HypercallOp.MmuextOp => MmuextOp(frame),
            _ when _pvCpu is not null && PvCpu.Handles(op) => _pvCpu.Dispatch(frame, op),
            _ => Unknown(frame, "op"),
        };
    }

    /// <summary>-ENOSYS for an op (or sub-command) we do not implement: counted, and logged once each.</summary>
    private long Unknown(HypercallFrame frame, string what, int command = -1)
    {
        string name = command < 0 ? OpName(frame.Op) : $"{OpName(frame.Op)}:{command}";
        Counters.Increment("hypercall-enosys");
        Counters.Increment($"enosys-{name}");
        ulong key = (frame.Op << 32) | (uint)command;
        bool first;
        lock (_unknownLogged)
        {
            first = _unknownLogged.Add(key);
        }

        if (first)
        {
            Warn($"vCPU {frame.VcpuId}: unimplemented hypercall {what} {name}: -ENOSYS");
        }

        return -XenErrno.ENOSYS;
    }

    private static string OpName(ulong op) =>
        op <= (ulong)HypercallOp.HypfsOp && Enum.IsDefined((HypercallOp)op) ? ((HypercallOp)op).ToString() : $"op{op}";

    private void Warn(string line) => _options.Log?.Invoke($"xen: {line}");

    /// <summary>Stops the timers; a callback already running sees <see cref="_disposed"/> and does nothing.</summary>
    public void Dispose()
    {
        Volatile.Write(ref _disposed, true);
        ReleasePvGrantMaps();
        foreach (XenVcpu vcpu in _vcpus)
        {
            vcpu.Dispose();
        }
    }
}
