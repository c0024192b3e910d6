using SharpVisor.Memory;

namespace SharpVisor.Emulator.Mmu;

/// <summary>
/// Shadow paging: a cache of the guest's page tables, built from walks and kept coherent by
/// write-tracking every guest frame it shadows. A TLB miss descends the shadow tables (no
/// guest-memory reads, no checks: they were made when the entries were walked) and walks the
/// guest tables only when an entry is not cached yet, the access needs an accessed/dirty
/// update, or it faults.
/// </summary>
/// <remarks>
/// Shadow tables are keyed by guest frame and level, so every address space whose walks pass
/// through a guest table shares its shadow, and they survive CR3 loads: only the vCPU's TLB is
/// flushed then (global entries kept). Coherence comes from write tracking instead: frames
/// with shadows never get TLB write tags, so guest stores to them reach
/// <see cref="IMmu.Translate"/>, which marks them <see cref="Translation.WriteTracked"/>; the
/// CPU reports the store with <see cref="OnGuestPhysicalWrite"/> and the shadow entries whose
/// guest entries changed are dropped, with the TLB pages they mapped. A page written many times
/// without being walked is taken to be data again and is no longer shadowed. Writes that do not
/// pass through the CPU (device DMA into page tables) are not seen: INVLPG or a reset covers them.
/// One vCPU per instance: cross-vCPU coherence for SMP guests needs a shared tracker (not yet).
/// </remarks>
public sealed class ShadowMmu : MmuBase
{
    // Guest frame -> shadows of it (linked through NextInFrame): the write-tracked set.
    private readonly Dictionary<ulong, ShadowTable> _frames = new();
    private ShadowTable? _root;
    private int _tableCount;

    public ShadowMmu(GuestMemory memory, MmuOptions? options = null)
        : base(memory, options)
    {
    }

    public override MmuMode Mode => MmuMode.Shadow;

    /// <summary>Live shadow tables (write-tracked guest page-table pages).</summary>
    public int ShadowTableCount => _tableCount;

    public override bool IsWriteTracked(ulong physicalAddress) =>
        _frames.Count != 0 && _frames.ContainsKey(physicalAddress & SoftTlb.PageMask);

    public override void OnGuestPhysicalWrite(ulong physicalAddress, int length)
    {
        if (length <= 0 || _frames.Count == 0)
        {
            return;
        }

        ulong end = physicalAddress + (ulong)length;
        if (end < physicalAddress)
        {
            end = ulong.MaxValue;
        }

        ulong first = physicalAddress & SoftTlb.PageMask;
        ulong frames = ((end - 1 - first) >> 12) + 1;
        if (frames == 1)
        {
            WriteFrame(first, physicalAddress, end);
        }
        else if (frames <= (ulong)_frames.Count)
        {
            for (ulong i = 0; i < frames; i++)
            {
                WriteFrame(first + (i << 12), physicalAddress, end);
            }
        }
        else
        {
            // A large write (DMA, a loader): visit the tracked frames rather than every frame written.
            foreach (ulong frame in _frames.Keys.ToArray())
            {
                if (frame >= first && frame < end)
                {
                    WriteFrame(frame, physicalAddress, end);
                }
            }
        }
    }

    protected override Translation TranslateMiss(ulong linear, PageAccess access)
    {
        if (TryLookup(linear, access, out ulong physical, out PageRights rights, out ulong pageSize))
        {
            Counters.ShadowHits++;
            return Complete(linear, access, physical, rights, pageSize);
        }

        Counters.ShadowMisses++;
        Counters.Walks++;
        var memory = new GuestTableMemory(Memory);
        if (!Walker.Walk(ref memory, linear, access, out PageWalk walk))
        {
            return Fault(walk.ErrorCode, linear);
        }

        Populate(linear, ref walk);
        return Complete(linear, access, walk.PhysicalAddress, walk.Rights, walk.PageSize);
    }

    protected override bool TryReadPdptes(ulong cr3, Span<ulong> pdptes)
    {
        var memory = new GuestTableMemory(Memory);
        return Walker.TryReadPdptes(ref memory, cr3, pdptes);
    }

    protected override nint ResolvePage(ulong physicalPage, PageAccess access, out bool writable)
    {
        MemoryRegion? region = Memory.FindRegion(physicalPage, 4096);
        if (region is null)
        {
            writable = false;
            return 0;
        }

        writable = !region.ReadOnly;
        return region.HostAddress + (nint)(physicalPage - region.GuestPhysicalAddress);
    }

    protected override void OnPagingReset()
    {
        Counters.ShadowTablesDropped += _tableCount;
        _frames.Clear();
        _tableCount = 0;
        _root = null;
    }

    protected override void OnAddressSpaceChanged()
    {
        // PAE's root is the PDPTE registers, reloaded with CR3 and not write-tracked.
        _root = Walker.Mode == PagingMode.Pae ? new ShadowTable(Walker.RootTable, 3, 4, 0) : null;
    }

    protected override void OnFlushPage(ulong linear)
    {
        ShadowTable? table = CurrentRoot();
        for (int level = Walker.TopLevel; table is not null; level--)
        {
            int index = Walker.IndexOf(linear, level);
            ulong entry = table.Entries[index];
            if (entry == 0)
            {
                return;
            }

            if (Walker.IsLeaf(entry, level))
            {
                table.Entries[index] = 0;
                Counters.ShadowInvalidations++;
                return;
            }

            table = table.Children![index];
            if (table is { Dead: true })
            {
                return;
            }
        }
    }

    /// <summary>Descends the shadow tables; true when they translate the access without needing the guest's.</summary>
    private bool TryLookup(ulong linear, PageAccess access, out ulong physical, out PageRights rights, out ulong pageSize)
    {
        physical = 0;
        pageSize = 0;
        rights = PageRights.All;
        ShadowTable? table = CurrentRoot();
        if (table is null)
        {
            return false;
        }

        for (int level = Walker.TopLevel; ; level--)
        {
            int index = Walker.IndexOf(linear, level);
            ulong entry = table.Entries[index];
            if (entry == 0)
            {
                return false;
            }

            if (table.WritesSinceUse != 0)
            {
                table.WritesSinceUse = 0; // in use as a page table: not flooded
            }

            rights &= Walker.RightsOf(entry, level);
            if (Walker.IsLeaf(entry, level))
            {
                rights |= Walker.LeafFlags(entry);
                pageSize = Walker.EntrySpan(level);
                physical = Walker.LeafFrame(entry, level) | (linear & (pageSize - 1));

                // Faults, and writes that must set the dirty bit, take the walk.
                return Walker.IsAllowed(rights, access)
                    && ((access & PageAccess.Write) == 0 || (rights & PageRights.Dirty) != 0);
            }

            ShadowTable? child = table.Children![index];
            if (child is null || child.Dead)
            {
                return false;
            }

            // A table reached at a second linear address makes its invalidations flush everything.
            if (child.LinearBase != (linear & ~(Walker.EntrySpan(level) - 1)))
            {
                child.Aliased = true;
            }

            table = child;
        }
    }

    /// <summary>Caches a successful walk's entries along its path, shadowing (and write-tracking) each guest table it used.</summary>
    private void Populate(ulong linear, ref PageWalk walk)
    {
        if (_tableCount + walk.Levels > Options.MaxShadowTables)
        {
            Counters.TlbFlushes++;
            Tlb.Flush(includeGlobal: true);
            OnPagingReset();
            OnAddressSpaceChanged();
        }

        int top = Walker.TopLevel;
        ShadowTable table = CurrentRoot() ?? (_root = GetOrCreate(walk.Tables[0], top, 0));
        for (int i = 0; ; i++)
        {
            int level = top - i;
            int index = Walker.IndexOf(linear, level);
            table.Entries[index] = walk.Entries[i];
            table.WritesSinceUse = 0;
            if (i == walk.Levels - 1)
            {
                return;
            }

            ulong childAddress = walk.Tables[i + 1];
            ulong childBase = linear & ~(Walker.EntrySpan(level) - 1);
            ShadowTable? child = table.Children![index];
            if (child is null || child.Dead || child.PhysicalAddress != childAddress)
            {
                child = GetOrCreate(childAddress, level - 1, childBase);
                table.Children[index] = child;
            }
            else if (child.LinearBase != childBase)
            {
                child.Aliased = true;
            }

            table = child;
        }
    }

    private ShadowTable? CurrentRoot()
    {
        if (_root is { Dead: false })
        {
            return _root;
        }

        _root = Walker.Mode == PagingMode.Pae ? null : Find(Walker.RootTable, Walker.TopLevel);
        return _root;
    }

    private ShadowTable? Find(ulong physicalAddress, int level)
    {
        _frames.TryGetValue(physicalAddress & SoftTlb.PageMask, out ShadowTable? table);
        while (table is not null && (table.Level != level || table.PhysicalAddress != physicalAddress))
        {
            table = table.NextInFrame;
        }

        return table;
    }

    private ShadowTable GetOrCreate(ulong physicalAddress, int level, ulong linearBase)
    {
        ShadowTable? table = Find(physicalAddress, level);
        if (table is not null)
        {
            if (table.LinearBase != linearBase)
            {
                table.Aliased = true;
            }

            return table;
        }

        ulong frame = physicalAddress & SoftTlb.PageMask;
        _frames.TryGetValue(frame, out ShadowTable? head);
        table = new ShadowTable(physicalAddress, level, Walker.Mode == PagingMode.Legacy32 ? 1024 : 512, linearBase)
        {
            NextInFrame = head,
        };
        _frames[frame] = table;
        _tableCount++;
        Counters.ShadowTablesCreated++;
        if (head is null)
        {
            Tlb.RevokeWrite(frame); // newly tracked: stores to it must come to the MMU from now on
        }

        return table;
    }

    private void WriteFrame(ulong frame, ulong start, ulong end)
    {
        if (_frames.TryGetValue(frame, out ShadowTable? head))
        {
            Counters.TrackedWrites++;
            OnTrackedWrite(frame, head, Math.Max(start, frame), Math.Min(end, frame + 4096));
        }
    }

    private void OnTrackedWrite(ulong frame, ShadowTable head, ulong start, ulong end)
    {
        bool flooded = false;
        for (ShadowTable? table = head; table is not null; table = table.NextInFrame)
        {
            flooded |= ++table.WritesSinceUse > Options.WriteFloodThreshold;
        }

        if (flooded)
        {
            Unshadow(frame, head);
            return;
        }

        int size = Walker.EntrySize;
        int first = (int)(start - frame) / size;
        int last = (int)(end - 1 - frame) / size;
        for (ShadowTable? table = head; table is not null; table = table.NextInFrame)
        {
            for (int index = first; index <= last; index++)
            {
                ulong cached = table.Entries[index];
                if (cached != 0 && ReadEntry(frame + (ulong)(index * size), size) != cached)
                {
                    table.Entries[index] = 0;
                    if (table.Children is not null)
                    {
                        table.Children[index] = null;
                    }

                    Counters.ShadowInvalidations++;
                    FlushTlb(table, Canonical(table.LinearBase + ((ulong)index * Walker.EntrySpan(table.Level))), Walker.EntrySpan(table.Level));
                }
            }
        }
    }

    /// <summary>Stops shadowing a frame the guest now uses as data; parents still pointing at its shadows see them dead.</summary>
    private void Unshadow(ulong frame, ShadowTable head)
    {
        _frames.Remove(frame);
        for (ShadowTable? table = head; table is not null; table = table.NextInFrame)
        {
            table.Dead = true;
            _tableCount--;
            Counters.ShadowTablesDropped++;
            FlushTlb(table, table.LinearBase, Walker.EntrySpan(table.Level) * (ulong)table.Entries.Length);
        }
    }

    private void FlushTlb(ShadowTable table, ulong start, ulong size)
    {
        if (table.Aliased)
        {
            Counters.TlbFlushes++;
            Tlb.Flush(includeGlobal: true);
        }
        else
        {
            Tlb.FlushRange(start, size);
        }
    }

    private unsafe ulong ReadEntry(ulong physicalAddress, int size)
    {
        if (!Memory.TryTranslate(physicalAddress, (ulong)size, out nint host))
        {
            return ulong.MaxValue;
        }

        return size == 4 ? Volatile.Read(ref *(uint*)host) : Volatile.Read(ref *(ulong*)host);
    }

    /// <summary>Sign-extends a 4-level linear address from bit 47.</summary>
    private ulong Canonical(ulong linear) =>
        Walker.Mode == PagingMode.FourLevel ? (ulong)((long)(linear << 16) >> 16) : linear;
}
