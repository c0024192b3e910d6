using SharpVisor.Xen.Pv;

namespace SharpVisor.Xen;

/// <summary>
/// Direct-paging hypercalls of a PV domain (mmu_update, update_va_mapping, mmuext_op): argument
/// decoding here, the rules in <see cref="PvPageTables"/>. A domain without PV paging (PVH, HVM)
/// answers -ENOSYS, as Xen's HVM hypercall table does.
/// </summary>
public sealed partial class XenDomain
{
    /// <summary>Requests one mmu_update or mmuext_op call may carry (Xen preempts long batches; Linux sends tens).</summary>
    public const int MaxPvBatch = 1 << 16;

    private PvPageTables? _pvTables;
    private PvVcpuPaging[] _pvPaging = [];

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
