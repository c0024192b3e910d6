namespace SharpVisor.Xen;

public sealed partial class XenDomain
{
    private const int MaxExtents = 1 << 20;

    private readonly object _balloonLock = new();

    /// <summary>
    /// One bit per frame up to the end of RAM: the frames the guest gave back (decrease_reservation)
    /// and has not populated again. A bitmap, so a guest that gives everything back costs the host
    /// one bit per page, not a set entry; created at the first balloon call.
    /// </summary>
    private System.Collections.BitArray? _ballooned;
    private long _balloonedPages;

    /// <summary>Pages the guest has given back through its balloon driver and not taken again.</summary>
    public long BalloonedPages => _pvTables is { } pv ? pv.GivenBackCount : Interlocked.Read(ref _balloonedPages);

    /// <summary>XENMEM_current_reservation: the domain's RAM (a PV domain's pages) less what it ballooned out.</summary>
    public long CurrentReservationPages => _pvTables is { } pv
        ? pv.PhysToMachine.PageCount - pv.GivenBackCount
        : (long)(Memory.RamSize >> 12) - BalloonedPages;

    /// <summary>
    /// Ballooning by frame lists (order-0 extents only), as Xen does it for a translated guest:
    /// decrease_reservation gives RAM frames back — the host releases them (MADV_REMOVE of the
    /// memfd pages, so the VMM's memory really shrinks) — and populate_physmap brings frames back,
    /// zeroed. increase_reservation has nothing to hand out (no free pool beyond the guest's RAM).
    /// Each frame is checked: RAM of the domain, not a page the hypervisor keeps (the console and
    /// XenStore rings), not given back twice. As in Xen, the first frame that fails (or a list
    /// the guest cannot give) ends the batch, and the answer is the number of extents done.
    /// </summary>
    private long Reservation(HypercallFrame frame, int command, ulong arg)
    {
        // struct xen_memory_reservation { handle extent_start; xen_ulong_t nr_extents; unsigned int extent_order; unsigned int mem_flags; domid_t domid; }
        ulong extents = frame.Read<ulong>(arg);
        ulong count = frame.Read<ulong>(arg + 8);
        uint order = frame.Read<uint>(arg + 16);
        CheckSelf(frame.Read<ushort>(arg + 24));
        if (order != 0)
        {
            throw new XenException(XenErrno.EINVAL, $"extent order {order}: only single pages");
        }

        int n = HypercallFrame.CheckLength(count, MaxExtents);
        if (command == MemIncreaseReservation)
        {
            return 0;
        }

        if (_pvTables is not null)
        {
            return PvReservation(frame, command, extents, n);
        }

        long done = 0;
        for (int i = 0; i < n; i++)
        {
            string? refusal = command == MemDecreaseReservation
                ? GiveBack(frame, extents + ((ulong)i * 8))
                : TakeBack(frame, extents + ((ulong)i * 8));
            if (refusal is not null)
            {
                Counters.Increment("balloon-refused");
                if (Counters["balloon-refused"] <= 10)
                {
                    Warn($"vCPU {frame.VcpuId}: {(command == MemDecreaseReservation ? "decrease_reservation" : "populate_physmap")} stopped after {done} of {n} extents: {refusal}");
                }

                break;
            }

            done++;
        }

        return done;
    }

    /// <summary>One frame of decrease_reservation; null when done, else why not.</summary>
    private string? GiveBack(HypercallFrame frame, ulong slot)
    {
        if (!TryReadExtent(frame, slot, out ulong gfn, out string? refusal))
        {
            return refusal;
        }

        if (gfn == GetParam(HvmParam.ConsolePfn) || gfn == GetParam(HvmParam.StorePfn))
        {
            return $"frame 0x{gfn:x} is a hypervisor ring";
        }

        if (IsGrantMapped(gfn << 12))
        {
            return $"frame 0x{gfn:x} is grant-mapped";
        }

        lock (_balloonLock)
        {
            System.Collections.BitArray ballooned = BalloonBitmap();
            if (ballooned[(int)gfn])
            {
                return $"frame 0x{gfn:x} was already given back";
            }

            ballooned[(int)gfn] = true;
            Interlocked.Increment(ref _balloonedPages);
        }

        Memory.TryDiscard(gfn << 12, 4096);

        Counters.Increment("balloon-pages-out");
        return null;
    }

    /// <summary>One frame of populate_physmap; null when done, else why not.</summary>
    private string? TakeBack(HypercallFrame frame, ulong slot)
    {
        if (!TryReadExtent(frame, slot, out ulong gfn, out string? refusal))
        {
            return refusal;
        }

        if (IsGrantMapped(gfn << 12))
        {
            return $"frame 0x{gfn:x} is grant-mapped";
        }

        // A frame that was never given back is replaced by a fresh page too, as in Xen.
        Memory.Fill(gfn << 12, 4096, 0);

        lock (_balloonLock)
        {
            System.Collections.BitArray ballooned = BalloonBitmap();
            if (ballooned[(int)gfn])
            {
                ballooned[(int)gfn] = false;
                Interlocked.Decrement(ref _balloonedPages);
            }
        }

        Counters.Increment("balloon-pages-in");
        return null;
    }

    /// <summary>The first frame past the domain's RAM: the balloon's frames are below it.</summary>
    private ulong BalloonFrameLimit => Memory.Regions.Where(r => r.IsRam).Select(r => r.End >> 12).DefaultIfEmpty(0UL).Max();

    private System.Collections.BitArray BalloonBitmap() => _ballooned ??= new System.Collections.BitArray((int)BalloonFrameLimit);

    /// <summary>Reads the frame number at <paramref name="slot"/> of the guest's list and checks that it is RAM of the domain.</summary>
    private bool TryReadExtent(HypercallFrame frame, ulong slot, out ulong gfn, out string? refusal)
    {
        gfn = 0;
        refusal = null;
        try
        {
            gfn = frame.Read<ulong>(slot);
        }
        catch (XenException e)
        {
            refusal = e.Message;
            return false;
        }

        if (gfn >= BalloonFrameLimit || Memory.FindRegion(gfn << 12, 4096) is not { IsRam: true })
        {
            refusal = $"frame 0x{gfn:x} is not RAM of this domain";
            return false;
        }

        return true;
    }
}
