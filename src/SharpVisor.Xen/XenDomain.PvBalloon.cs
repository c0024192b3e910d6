namespace SharpVisor.Xen;

/// <summary>
/// The balloon of a PV domain (not translated): decrease_reservation names machine frames, which
/// leave the domain for the hypervisor's free pool; populate_physmap names pseudo-physical frames
/// and answers, in the extent list, the new machine frame backing each (Xen's populate_physmap for
/// a PV guest), which the guest then puts in its P2M and maps. The frame checks are
/// <see cref="Pv.PvPageTables.TryReleaseFrame"/> and <see cref="Pv.PvPageTables.TryTakeFrame"/>.
/// </summary>
public sealed partial class XenDomain
{
    /// <summary>Extents done, as Xen answers a batch: the first refusal ends it.</summary>
    private long PvReservation(HypercallFrame frame, int command, ulong extents, int count)
    {
        Pv.PvPageTables pv = _pvTables!;
        long done = 0;
        for (int i = 0; i < count; i++)
        {
            ulong slot = extents + ((ulong)i * 8);
            ulong value = frame.Read<ulong>(slot);
            int rc;
            if (command == MemDecreaseReservation)
            {
                if (IsGrantMapped(value << 12))
                {
                    rc = -XenErrno.EBUSY;
                }
                else
                {
                    rc = pv.TryReleaseFrame(value, () => Memory.TryDiscard(value << 12, 4096));
                }
            }
            else
            {
                rc = pv.TryTakeFrame(value, mfn => Memory.Fill(mfn << 12, 4096, 0), out ulong mfn);
                if (rc == 0)
                {
                    frame.Write(slot, mfn);          // "inform the domain of the new page's machine address"
                }
            }

            if (rc != 0)
            {
                Counters.Increment("balloon-refused");
                if (Counters["balloon-refused"] <= 10)
                {
                    Warn($"vCPU {frame.VcpuId}: {(command == MemDecreaseReservation ? "decrease_reservation" : "populate_physmap")} stopped after {done} of {count} extents: frame 0x{value:x}: {rc}");
                }

                break;
            }

            Counters.Increment(command == MemDecreaseReservation ? "balloon-pages-out" : "balloon-pages-in");
            done++;
        }

        return done;
    }
}
