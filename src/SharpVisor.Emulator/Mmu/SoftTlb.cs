using System.Runtime.CompilerServices;

namespace SharpVisor.Emulator.Mmu;

/// <summary>
/// The software TLB the CPU consults inline before calling the MMU: a direct-mapped array per
/// <see cref="TlbContext"/>, indexed by the linear page number, holding RAM pages only (MMIO and
/// faulting pages always go to <see cref="IMmu.Translate"/>). One per vCPU.
/// </summary>
/// <remarks>
/// Tags carry a generation stamp in their low 12 bits, so a full flush is a counter increment.
/// A CR3 load flushes all but global entries: those keep their older stamp and are re-stamped at
/// their next lookup (<see cref="TryLookup"/>, the slow path every TLB miss takes). A tag is set
/// only when that access needs no MMU work: writes need the leaf's dirty bit already set, a
/// writable host page, and a frame no vCPU write-tracks (<see cref="WriteTracker"/>).
/// In a machine with more vCPUs, other threads revoke write tags (<see cref="RevokeWrite(ulong)"/>):
/// write tags are then stored with care so that a revocation is never undone.
/// <code>
/// ref TlbEntry e = ref tlb.EntryFor(linear, context);
/// if (e.ReadTag == ((linear &amp; SoftTlb.PageMask) | tlb.Stamp)) host = (nint)linear + e.Addend;
/// </code>
/// </remarks>
public sealed class SoftTlb
{
    public const int ContextCount = 3;
    public const ulong PageMask = ~0xFFFUL;

    /// <summary>Never equals a tag: its low bits are no stamp.</summary>
    public const ulong InvalidTag = ulong.MaxValue;

    private const ulong MaxStamp = 0xFFE;
    private const byte SlotGlobal = 1;
    private const byte SlotListed = 2;

    private readonly TlbEntry[] _entries;
    private readonly ulong[] _physicalPages;
    private readonly byte[] _slotFlags;
    private readonly int _slotMask;
    private readonly List<int> _globalSlots = new();

    // Large pages with entries in the TLB, keyed by linear base | log2(size): INVLPG of any
    // address in a large page must drop all of its 4 KiB pieces.
    private readonly HashSet<ulong> _largePages = new();
    private int _largePageShifts;
    private ulong _stamp = 1;

    public SoftTlb(int slots)
    {
        if (slots < 16 || (slots & (slots - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(slots), "TLB slots must be a power of two of at least 16");
        }

        Slots = slots;
        _slotMask = slots - 1;
        _entries = new TlbEntry[ContextCount * slots];
        _physicalPages = new ulong[ContextCount * slots];
        _slotFlags = new byte[ContextCount * slots];
        ClearAll();
    }

    /// <summary>
    /// Set when other vCPUs' threads may revoke this TLB's write tags (a machine with more than
    /// one vCPU): re-stamping then uses compare-and-swap so it cannot revive a revoked tag.
    /// </summary>
    public bool Shared { get; internal set; }

    /// <summary>Slots per context.</summary>
    public int Slots { get; }

    /// <summary>The generation stamp every valid tag carries in its low 12 bits.</summary>
    public ulong Stamp => _stamp;

    /// <summary>All entries: context <c>c</c>'s slot <c>s</c> is at <c>c * Slots + s</c>.</summary>
    public TlbEntry[] Entries => _entries;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TlbContext ContextFor(PageAccess access)
    {
        if ((access & (PageAccess.User | PageAccess.Implicit)) == PageAccess.User)
        {
            return TlbContext.User;
        }

        return (access & (PageAccess.Implicit | PageAccess.AlignmentCheck)) == PageAccess.AlignmentCheck
            ? TlbContext.SupervisorAlignmentCheck
            : TlbContext.Supervisor;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ref TlbEntry EntryFor(ulong linear, TlbContext context) =>
        ref _entries[((int)context * Slots) + ((int)(linear >> 12) & _slotMask)];

    /// <summary>The host address of <paramref name="linear"/> when the TLB allows <paramref name="access"/> to it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryGetHostAddress(ulong linear, PageAccess access, out nint host)
    {
        ref TlbEntry entry = ref EntryFor(linear, ContextFor(access));
        ulong tag = (access & PageAccess.Execute) != 0 ? entry.ExecuteTag
            : (access & PageAccess.Write) != 0 ? entry.WriteTag
            : entry.ReadTag;
        if (tag == ((linear & PageMask) | _stamp))
        {
            host = (nint)linear + entry.Addend;
            return true;
        }

        host = 0;
        return false;
    }

    /// <summary>As <see cref="TryGetHostAddress"/>, also giving the guest-physical address.</summary>
    public bool TryLookup(ulong linear, PageAccess access, out nint host, out ulong physical)
    {
        if (!TryGetHostAddress(linear, access, out host) && !(TryRevive(linear, access) && TryGetHostAddress(linear, access, out host)))
        {
            physical = 0;
            return false;
        }

        int index = ((int)ContextFor(access) * Slots) + ((int)(linear >> 12) & _slotMask);
        physical = _physicalPages[index] | (linear & 0xFFF);
        return true;
    }

    /// <summary>
    /// Whether the TLB holds <paramref name="linear"/>'s page for <paramref name="access"/> from a
    /// global translation, one a CR3 load keeps (<see cref="Flush(bool)"/>).
    /// </summary>
    public bool IsGlobal(ulong linear, PageAccess access)
    {
        if (!TryGetHostAddress(linear, access, out _))
        {
            return false;
        }

        int index = ((int)ContextFor(access) * Slots) + ((int)(linear >> 12) & _slotMask);
        return (_slotFlags[index] & SlotGlobal) != 0;
    }

    /// <summary>Caches the 4 KiB page of <paramref name="linear"/> for one context with the accesses it allows.</summary>
    public void Fill(ulong linear, TlbContext context, nint hostPage, ulong physicalPage, bool read, bool write, bool execute, bool global, ulong pageSize)
    {
        if (pageSize > 4096 && _largePages.Count >= 4 * Slots)
        {
            Flush(includeGlobal: true); // keeps the large-page set bounded whatever the guest maps
        }

        int index = ((int)context * Slots) + ((int)(linear >> 12) & _slotMask);
        ulong page = linear & PageMask;
        ulong tag = page | _stamp;
        ref TlbEntry entry = ref _entries[index];
        entry.ReadTag = read ? tag : InvalidTag;
        entry.WriteTag = write ? tag : InvalidTag;
        entry.ExecuteTag = execute ? tag : InvalidTag;
        entry.Addend = hostPage - (nint)page;

        // After the tags: a revoking thread that sees this page also sees (and kills) the write tag.
        Volatile.Write(ref _physicalPages[index], physicalPage & PageMask);

        byte flags = (byte)(_slotFlags[index] & SlotListed);
        if (global)
        {
            if (flags == 0)
            {
                _globalSlots.Add(index);
                flags = SlotListed;
            }

            flags |= SlotGlobal;
        }

        _slotFlags[index] = flags;
        if (pageSize > 4096)
        {
            int shift = System.Numerics.BitOperations.Log2(pageSize);
            _largePages.Add((linear & ~(pageSize - 1)) | (uint)shift);
            _largePageShifts |= 1 << shift;
        }
    }

    /// <summary>INVLPG: drops the page of <paramref name="linear"/>, global or not, and every piece of a large page holding it.</summary>
    public void FlushPage(ulong linear)
    {
        InvalidateSlots(linear);
        if (_largePageShifts == 0)
        {
            return;
        }

        for (int shift = 21; shift <= 30; shift++)
        {
            if ((_largePageShifts & (1 << shift)) == 0)
            {
                continue;
            }

            ulong size = 1UL << shift;
            ulong start = linear & ~(size - 1);
            if (_largePages.Remove(start | (uint)shift))
            {
                FlushRange(start, size);
            }
        }
    }

    /// <summary>Drops every page in [start, start + size) (possibly more).</summary>
    public void FlushRange(ulong start, ulong size)
    {
        ulong pages = (size + 0xFFF) >> 12;
        if (pages >= (ulong)Slots)
        {
            Flush(includeGlobal: true);
            return;
        }

        ulong page = start & PageMask;
        for (ulong i = 0; i < pages; i++)
        {
            InvalidateSlots(page + (i << 12));
        }
    }

    /// <summary>Drops every entry; with <paramref name="includeGlobal"/> false, global entries survive (a CR3 load).</summary>
    public void Flush(bool includeGlobal)
    {
        ulong old = _stamp;
        if (old == MaxStamp)
        {
            ClearAll(); // stamps ran out: really clear, globals included (a TLB may always drop more)
            return;
        }

        _stamp = old + 1;
        if (includeGlobal)
        {
            foreach (int index in _globalSlots)
            {
                _slotFlags[index] = 0;
            }

            _globalSlots.Clear();
            _largePages.Clear();
            _largePageShifts = 0;
            return;
        }

        // Global entries keep their older stamp: TryLookup re-stamps one at its next use. Linux loads
        // CR3 some 18,500 times in a boot, most of them around text_poke, touching a few of the
        // thousands of global entries in between; re-stamping them all each time cost more.
    }

    /// <summary>
    /// Takes write access away from every entry for <paramref name="physicalPage"/> (it became
    /// write-tracked). Safe from any thread: a slot being refilled meanwhile may lose its write
    /// tag too, which only costs its owner a slow-path store.
    /// </summary>
    public void RevokeWrite(ulong physicalPage)
    {
        // A vectorised search: every entry is looked at (a page can be mapped at any linear
        // address), and tracking starts thousands of times in a boot.
        physicalPage &= PageMask;
        ReadOnlySpan<ulong> pages = _physicalPages;
        int start = 0;
        while (true)
        {
            int found = pages[start..].IndexOf(physicalPage);
            if (found < 0)
            {
                break;
            }

            Volatile.Write(ref _entries[start + found].WriteTag, InvalidTag);
            start += found + 1;
        }
    }

    /// <summary>Takes write access away from every entry (the dirty log was fetched); safe from any thread once <see cref="Shared"/>.</summary>
    public void RevokeAllWrites()
    {
        for (int i = 0; i < _entries.Length; i++)
        {
            if (Volatile.Read(ref _entries[i].WriteTag) != InvalidTag)
            {
                Volatile.Write(ref _entries[i].WriteTag, InvalidTag);
            }
        }
    }

    /// <summary>Takes write access away from the entry of <paramref name="linear"/> in one context.</summary>
    public void RevokeWrite(ulong linear, TlbContext context) => Volatile.Write(ref EntryFor(linear, context).WriteTag, InvalidTag);

    /// <summary>
    /// A global entry a non-global flush left with an older stamp (a global translation survives CR3
    /// loads): re-stamped, tag by tag, for the page of <paramref name="linear"/>. False when the slot
    /// holds no global entry for that page.
    /// </summary>
    private bool TryRevive(ulong linear, PageAccess access)
    {
        int index = ((int)ContextFor(access) * Slots) + ((int)(linear >> 12) & _slotMask);
        if ((_slotFlags[index] & SlotGlobal) == 0)
        {
            return false;
        }

        ulong page = linear & PageMask;
        ref TlbEntry entry = ref _entries[index];
        bool any = Revive(ref entry.ReadTag, page);
        any |= Shared ? ReviveShared(ref entry.WriteTag, page) : Revive(ref entry.WriteTag, page);
        any |= Revive(ref entry.ExecuteTag, page);
        return any;
    }

    /// <summary>Re-stamps a write tag another thread may be revoking: a revoked tag stays revoked.</summary>
    private bool ReviveShared(ref ulong tag, ulong page)
    {
        ulong current = Volatile.Read(ref tag);
        if (current == InvalidTag || (current & PageMask) != page)
        {
            return false;
        }

        return Interlocked.CompareExchange(ref tag, page | _stamp, current) == current;
    }

    private bool Revive(ref ulong tag, ulong page)
    {
        if (tag == InvalidTag || (tag & PageMask) != page)
        {
            return false;
        }

        tag = page | _stamp;
        return true;
    }

    private void InvalidateSlots(ulong linear)
    {
        int slot = (int)(linear >> 12) & _slotMask;
        for (int context = 0; context < ContextCount; context++)
        {
            int index = (context * Slots) + slot;
            ref TlbEntry entry = ref _entries[index];
            entry.ReadTag = InvalidTag;
            entry.WriteTag = InvalidTag;
            entry.ExecuteTag = InvalidTag;
            _slotFlags[index] &= SlotListed;
        }
    }

    private void ClearAll()
    {
        Array.Fill(_entries, new TlbEntry { ReadTag = InvalidTag, WriteTag = InvalidTag, ExecuteTag = InvalidTag });
        Array.Clear(_slotFlags);
        _globalSlots.Clear();
        _largePages.Clear();
        _largePageShifts = 0;
        _stamp = 1;
    }
}
