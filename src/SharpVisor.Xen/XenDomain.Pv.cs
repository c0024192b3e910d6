using SharpVisor.Machine.Hypervisor;
using SharpVisor.Xen.Pv;

namespace SharpVisor.Xen;

/// <summary>
/// Direct-paging hypercalls of a PV domain (mmu_update, update_va_mapping, mmuext_op): argument
/// decoding here, the rules in <see cref="PvPageTables"/>. A domain without PV paging (PVH, HVM)
/// answers -ENOSYS, as Xen's HVM hypercall table does.
/// </summary>
public sealed partial class XenDomain : IParavirtualCpuProvider
{
    /// <summary>Requests one mmu_update or mmuext_op call may carry (Xen preempts long batches; Linux sends tens).</summary>
    public const int MaxPvBatch = 1 << 16;

    /// <summary>The vector a PV upcall is reported with: the CPU hands it to the PV event path, never to an IDT.</summary>
    private const byte PvUpcallVector = 0xF3;

    private const int XenMemMachphysMapping = 12;

    private PvPageTables? _pvTables;
    private PvVcpuPaging[] _pvPaging = [];
    private PvCpu? _pvCpu;

    public IParavirtualCpu? ParavirtualCpu => _pvCpu;

    /// <summary>
    /// Makes this a PV domain with a PV CPU (after <see cref="AttachPvPaging"/>, before the vCPUs
    /// are created): hypercalls by SYSCALL, the trap table, callbacks, the PV GDT in
    /// <paramref name="gdtFrames"/> (the first of 16 hypervisor frames per vCPU).
    /// </summary>
    public PvCpu AttachPvCpu(IReadOnlyList<ulong> gdtFrames)
    {
        PvPageTables tables = _pvTables ?? throw new InvalidOperationException("attach the PV paging first");
        if (gdtFrames.Count != _vcpus.Length)
        {
            throw new ArgumentException($"{gdtFrames.Count} GDTs for {_vcpus.Length} vCPUs", nameof(gdtFrames));
        }

        _pvCpu = new PvCpu(this, tables, gdtFrames);
        return _pvCpu;
    }

    /// <summary>A hypercall from a PV guest kernel (CPL 3, yet privileged to call): the PV CPU decided it may.</summary>
    internal void RunPvHypercall(IHypercallContext context)
    {
        ulong op = context.GetRegister(0);
        RunHypercall(context, refuse: false);
        if (s_tracePv && Interlocked.Increment(ref _pvTraced) <= 5000)
        {
            Warn($"pv hypercall {OpName(op)}({context.GetRegister(7):x}, {context.GetRegister(6):x}, {context.GetRegister(2):x}) = {(long)context.GetRegister(0)}");
        }
    }

    /// <summary>SHARPVISOR_XEN_PV_TRACE=1 logs the first 5000 hypercalls of a PV domain with their results (bring-up diagnostics).</summary>
    private static readonly bool s_tracePv = Environment.GetEnvironmentVariable("SHARPVISOR_XEN_PV_TRACE") == "1";

    private int _pvTraced;

    /// <summary>A bring-up trace line under SHARPVISOR_XEN_PV_TRACE=1 (the same budget as the hypercall trace).</summary>
    internal void TracePv(string line)
    {
        if (s_tracePv && Interlocked.Increment(ref _pvTraced) <= 5000)
        {
            Warn($"pv {line}");
        }
    }

    internal ulong VcpuInfoOf(int vcpuId) => VcpuInfoAddress(_vcpus[vcpuId]);

    internal void LogPv(string line) => Warn(line);

    /// <summary>Places shared_info in the hypervisor frame the builder gave the PV domain (start_info.shared_info); events start masked, as Xen starts a PV vCPU.</summary>
    public void PlacePvSharedInfo(ulong machineAddress)
    {
        MapSharedInfo(machineAddress);
        for (int i = 0; i < Math.Min(_vcpus.Length, SharedInfoLayout.LegacyVcpus); i++)
        {
            Memory.Write(machineAddress + ((ulong)i * SharedInfoLayout.VcpuInfoSize) + SharedInfoLayout.UpcallMask, (byte)1);
        }
    }

    /// <summary>The memory_op commands only a PV domain has: XENMEM_machphys_mapping (where the M2P is).</summary>
    private bool TryPvMemoryOp(HypercallFrame frame, out long result)
    {
        result = 0;
        if (frame.Argument(0) != XenMemMachphysMapping)
        {
            return false;
        }

        // struct xen_machphys_mapping { xen_ulong_t v_start, v_end, max_mfn; }
        ulong frames = _pvTables!.PhysToMachine.MachineFrameCount;
        ulong arg = frame.Argument(1);
        frame.Write(arg, PvDomainBuilder.MachToPhysStart);
        frame.Write(arg + 8, PvDomainBuilder.MachToPhysStart + (frames * 8));
        frame.Write(arg + 16, frames - 1);
        return true;
    }

    /// <summary>The domain's direct paging, once the PV builder attached it.</summary>
    public PvPageTables? PvTables => _pvTables;

    /// <summary>Makes this a PV domain: its page-table hypercalls go to <paramref name="tables"/>.</summary>
    public void AttachPvPaging(PvPageTables tables)
    {
        ArgumentNullException.ThrowIfNull(tables);
        var paging = new PvVcpuPaging[_vcpus.Length];
        for (int i = 0; i < paging.Length; i++)
        {
            paging[i] = new PvVcpuPaging(i);
        }

        _pvPaging = paging;
        _pvTables = tables;
    }

    /// <summary>vCPU <paramref name="vcpuId"/>'s kernel and user L4s (PV domains only).</summary>
    public PvVcpuPaging PvPaging(int vcpuId) => _pvPaging[vcpuId];

    /// <summary>mmu_update(req[], count, pdone, foreigndom): applies requests in order, stops at the first failure.</summary>
    private long MmuUpdate(HypercallFrame frame)
    {
        if (_pvTables is null)
        {
            return Unknown(frame, "op");
        }

        ulong requests = frame.Argument(0);
        int count = CheckPvBatch(frame.Argument(1));
        ulong done = frame.Argument(2);
        CheckOwnDomain(frame.Argument(3));
        int rc = 0;
        int i = 0;
        for (; i < count; i++)
        {
            ulong ptr = frame.Read<ulong>(requests + ((ulong)i * 16));
            ulong value = frame.Read<ulong>(requests + ((ulong)i * 16) + 8);
            rc = _pvTables.MmuUpdate(ptr, value);
            if (rc != 0)
            {
                break;
            }
        }

        if (done != 0)
        {
            frame.Write(done, (uint)i);
        }

        return rc;
    }

    /// <summary>update_va_mapping(va, val, flags) on the calling vCPU's kernel table.</summary>
    private long UpdateVaMapping(HypercallFrame frame)
    {
        if (_pvTables is null)
        {
            return Unknown(frame, "op");
        }

        return _pvTables.UpdateVaMapping(_pvPaging[frame.VcpuId], frame.Argument(0), frame.Argument(1), frame.Argument(2));
    }

    /// <summary>mmuext_op(op[], count, pdone, foreigndom): struct mmuext_op is { uint cmd; ulong arg1; ulong arg2; } (24 bytes).</summary>
    private long MmuextOp(HypercallFrame frame)
    {
        if (_pvTables is null)
        {
            return Unknown(frame, "op");
        }

        ulong ops = frame.Argument(0);
        int count = CheckPvBatch(frame.Argument(1));
        ulong done = frame.Argument(2);
        CheckOwnDomain(frame.Argument(3));
        PvVcpuPaging paging = _pvPaging[frame.VcpuId];
        int rc = 0;
        int i = 0;
        for (; i < count; i++)
        {
            ulong at = ops + ((ulong)i * 24);
            uint command = frame.Read<uint>(at);
            Counters.Increment($"mmuext_op:{command}");
            rc = _pvTables.MmuextOp(paging, (PvMmuextCommand)command, frame.Read<ulong>(at + 8), frame.Read<ulong>(at + 16));
            if (rc != 0)
            {
                break;
            }
        }

        if (done != 0)
        {
            frame.Write(done, (uint)i);
        }

        return rc;
    }

    private static int CheckPvBatch(ulong count) =>
        count <= MaxPvBatch ? (int)count : throw new XenException(XenErrno.EINVAL, $"batch of {count} requests exceeds {MaxPvBatch}");

    /// <summary>The foreign-domain argument: only DOMID_SELF or our own id; dom0 exists but we are not privileged over it.</summary>
    private void CheckOwnDomain(ulong foreignDomain)
    {
        ulong domain = foreignDomain & 0xFFFF;
        if (domain != DomidSelf && domain != DomainId)
        {
            throw new XenException(domain == 0 ? XenErrno.EPERM : XenErrno.ESRCH, $"page-table update for domain {domain}");
        }
    }
}
