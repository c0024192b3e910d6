using System.Runtime.CompilerServices;
using SharpVisor.Machine;
using SharpVisor.Memory;

namespace SharpVisor.Emulator.Mmu;

/// <summary>
/// Walks the guest's page tables the way the processor does (Intel SDM vol. 3, chapter 4):
/// 32-bit, PAE and 4-level paging, large pages, reserved-bit checks, the U/S, R/W, XD, WP,
/// SMEP and SMAP rules, and atomic accessed/dirty updates. It holds the paging state that
/// CR0, CR3, CR4 and EFER select, including PAE's PDPTE registers.
/// </summary>
/// <remarks>
/// Accessed and dirty bits are set only when the translation succeeds. A table entry that no
/// RAM backs reads as all-ones (as unbacked physical memory does), which in PAE and 4-level
/// paging sets reserved bits, so the walk ends in a reserved-bit #PF. Entries in read-only
/// regions are read but not updated (writes to ROM are dropped). Canonical-address checks
/// (#GP) are the CPU's, before translation.
/// </remarks>
public sealed unsafe class PageWalker
{
    public const ulong EntryPresent = 1UL << 0;
    public const ulong EntryWritable = 1UL << 1;
    public const ulong EntryUser = 1UL << 2;
    public const ulong EntryAccessed = 1UL << 5;
    public const ulong EntryDirty = 1UL << 6;
    public const ulong EntryPageSize = 1UL << 7;
    public const ulong EntryGlobal = 1UL << 8;
    public const ulong EntryNoExecute = 1UL << 63;

    public const ulong Cr4Pse = 1UL << 4;
    public const ulong Cr4La57 = 1UL << 12;
    public const ulong Cr4Pcide = 1UL << 17;
    public const ulong Cr4Smep = 1UL << 20;
    public const ulong Cr4Smap = 1UL << 21;

    // A walk that keeps losing accessed/dirty races to other vCPUs gives up updating after this many tries.
    private const int MaxRaceRetries = 64;

    private readonly ulong _physicalMask;
    private readonly int _pse36Bits;
    private readonly bool _supports1GiBPages;
    private readonly ulong[] _pdptes = new ulong[4];
    private ulong _reservedHigh;
    private bool _wp;
    private bool _nxe;
    private bool _smep;
    private bool _smap;
    private bool _pge;
    private bool _pse;
    private bool _reportFetches;

    public PageWalker(MmuOptions options)
    {
        options.Validate();
        PhysicalAddressBits = options.PhysicalAddressBits;
        _physicalMask = Bits(PhysicalAddressBits - 1, 12);
        _pse36Bits = Math.Min(PhysicalAddressBits, 40) - 32;
        _supports1GiBPages = options.Supports1GiBPages;
    }

    public int PhysicalAddressBits { get; }

    /// <summary>Told about the page-table pages whose accessed/dirty bits a walk sets (they are guest stores).</summary>
    public DirtyPageLog? DirtyLog { get; init; }

    public PagingMode Mode { get; private set; }

    public ulong Cr0 { get; private set; }

    public ulong Cr3 { get; private set; }

    public ulong Cr4 { get; private set; }

    public ulong Efer { get; private set; }

    /// <summary>PAE paging's PDPTE registers, loaded with CR3.</summary>
    public ReadOnlySpan<ulong> Pdptes => _pdptes;

    /// <summary>The levels of the current mode's tables (0 with paging off).</summary>
    public int TopLevel => Mode switch
    {
        PagingMode.FourLevel => 4,
        PagingMode.Pae => 3,
        PagingMode.Legacy32 => 2,
        _ => 0,
    };

    /// <summary>The guest-physical address of the top-level table CR3 names.</summary>
    public ulong RootTable => Mode switch
    {
        PagingMode.FourLevel => Cr3 & _physicalMask,
        PagingMode.Pae => Cr3 & 0xFFFF_FFE0,
        _ => Cr3 & 0xFFFF_F000,
    };

    /// <summary>Bytes per entry in the current mode's tables.</summary>
    public int EntrySize => Mode == PagingMode.Legacy32 ? 4 : 8;

    /// <summary>The paging mode selected by these control registers.</summary>
    public static PagingMode ModeFor(ulong cr0, ulong cr4, ulong efer)
    {
        if ((cr0 & VcpuState.Cr0Paging) == 0)
        {
            return PagingMode.Disabled;
        }

        // LMA follows LME when paging is turned on; accept either so the CPU may update EFER after CR0.
        if ((efer & (VcpuState.EferLongModeEnable | VcpuState.EferLongModeActive)) != 0)
        {
            return PagingMode.FourLevel;
        }

        return (cr4 & VcpuState.Cr4Pae) != 0 ? PagingMode.Pae : PagingMode.Legacy32;
    }

    /// <summary>
    /// Reads and checks the four PDPTEs that a CR3 load in PAE paging loads into registers.
    /// False when a present PDPTE has a reserved bit set: the CPU raises #GP(0) and keeps its old state.
    /// </summary>
    public bool TryReadPdptes<TMemory>(ref TMemory memory, ulong cr3, Span<ulong> pdptes)
        where TMemory : struct, IPageTableMemory
    {
        ulong reserved = Bits(63, PhysicalAddressBits) | Bits(8, 5) | Bits(2, 1);
        ulong table = cr3 & 0xFFFF_FFE0;
        for (int i = 0; i < 4; i++)
        {
            nint host = memory.MapEntry(table + (ulong)i * 8, 8, out _);
            ulong entry = host == 0 ? ulong.MaxValue : Volatile.Read(ref *(ulong*)host);
            if ((entry & EntryPresent) != 0 && (entry & reserved) != 0)
            {
                return false;
            }

            pdptes[i] = entry;
        }

        return true;
    }

    /// <summary>Takes new control registers (and, for PAE paging, the PDPTEs read for CR3).</summary>
    public void SetControlRegisters(ulong cr0, ulong cr3, ulong cr4, ulong efer, ReadOnlySpan<ulong> pdptes)
    {
        Mode = ModeFor(cr0, cr4, efer);
        Cr0 = cr0;
        Cr3 = cr3;
        Cr4 = cr4;
        Efer = efer;
        _wp = (cr0 & VcpuState.Cr0WriteProtect) != 0;
        _nxe = (efer & VcpuState.EferNoExecute) != 0;
        _smep = (cr4 & Cr4Smep) != 0;
        _smap = (cr4 & Cr4Smap) != 0;
        _pge = (cr4 & VcpuState.Cr4Pge) != 0;
        _pse = (cr4 & Cr4Pse) != 0;
        _reportFetches = _smep || ((cr4 & VcpuState.Cr4Pae) != 0 && _nxe);
        _reservedHigh = Mode == PagingMode.Pae ? Bits(62, PhysicalAddressBits) : Bits(51, PhysicalAddressBits);
        if (!_nxe)
        {
            _reservedHigh |= EntryNoExecute;
        }

        if (Mode == PagingMode.Pae)
        {
            pdptes.CopyTo(_pdptes);
        }
        else
        {
            Array.Clear(_pdptes);
        }
    }

    /// <summary>
    /// Translates <paramref name="linear"/> for <paramref name="access"/>. False when the access
    /// faults: <see cref="PageWalk.ErrorCode"/> holds the #PF error code. Paging must be enabled.
    /// </summary>
    public bool Walk<TMemory>(ref TMemory memory, ulong linear, PageAccess access, out PageWalk walk)
        where TMemory : struct, IPageTableMemory
    {
        if (Mode == PagingMode.Disabled)
        {
            throw new InvalidOperationException("paging is disabled: linear addresses are physical");
        }

        for (int attempt = 0; ; attempt++)
        {
            WalkOutcome outcome = Mode == PagingMode.Legacy32
                ? WalkLegacy(ref memory, linear, access, attempt < MaxRaceRetries, out walk)
                : Walk64(ref memory, linear, access, attempt < MaxRaceRetries, out walk);
            if (outcome != WalkOutcome.Raced)
            {
                return outcome == WalkOutcome.Translated;
            }
        }
    }

    /// <summary>Whether a translation with <paramref name="rights"/> permits <paramref name="access"/> (SDM 4.6).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool IsAllowed(PageRights rights, PageAccess access)
    {
        bool userPage = (rights & PageRights.User) != 0;
        bool userAccess = (access & (PageAccess.User | PageAccess.Implicit)) == PageAccess.User;
        if ((access & PageAccess.Execute) != 0)
        {
            if ((rights & PageRights.Execute) == 0)
            {
                return false;
            }

            return userAccess ? userPage : !(userPage && _smep);
        }

        bool write = (access & PageAccess.Write) != 0;
        if (userAccess)
        {
            return userPage && (!write || (rights & PageRights.Write) != 0);
        }

        if (userPage && _smap && (access & (PageAccess.Implicit | PageAccess.AlignmentCheck)) != PageAccess.AlignmentCheck)
        {
            return false;
        }

        return !write || !_wp || (rights & PageRights.Write) != 0;
    }

    /// <summary>The #PF error code for a fault on <paramref name="access"/>.</summary>
    public PageFaultErrorCode ErrorCodeFor(PageAccess access, bool present, bool reservedBit)
    {
        PageFaultErrorCode code = (PageFaultErrorCode)(byte)(access & PageAccess.Write);
        if ((access & (PageAccess.User | PageAccess.Implicit)) == PageAccess.User)
        {
            code |= PageFaultErrorCode.User;
        }

        if ((access & PageAccess.Execute) != 0 && _reportFetches)
        {
            code |= PageFaultErrorCode.InstructionFetch;
        }

        if (present || reservedBit)
        {
            code |= PageFaultErrorCode.Present;
        }

        if (reservedBit)
        {
            code |= PageFaultErrorCode.ReservedBit;
        }

        return code;
    }

    /// <summary>The index of <paramref name="linear"/> in a table at <paramref name="level"/> (1 = page table).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int IndexOf(ulong linear, int level)
    {
        if (Mode == PagingMode.Legacy32)
        {
            return (int)(linear >> (level == 2 ? 22 : 12)) & 0x3FF;
        }

        if (Mode == PagingMode.Pae && level == 3)
        {
            return (int)(linear >> 30) & 3;
        }

        return (int)(linear >> (12 + 9 * (level - 1))) & 0x1FF;
    }

    /// <summary>The linear bytes one entry at <paramref name="level"/> maps.</summary>
    public ulong EntrySpan(int level) =>
        Mode == PagingMode.Legacy32 ? (level == 2 ? 1UL << 22 : 1UL << 12) : 1UL << (12 + 9 * (level - 1));

    /// <summary>Whether a present, checked <paramref name="entry"/> at <paramref name="level"/> maps a page rather than a table.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool IsLeaf(ulong entry, int level) => Mode switch
    {
        PagingMode.Legacy32 => level == 1 || (_pse && (entry & EntryPageSize) != 0),
        PagingMode.Pae => level == 1 || (level == 2 && (entry & EntryPageSize) != 0),
        _ => level == 1 || (level <= 3 && (entry & EntryPageSize) != 0),
    };

    /// <summary>The table a present, checked non-leaf <paramref name="entry"/> points to.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong NextTable(ulong entry) => Mode == PagingMode.Legacy32 ? entry & 0xFFFF_F000 : entry & _physicalMask;

    /// <summary>The rights one present entry grants (ANDed over the levels of a walk).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public PageRights RightsOf(ulong entry, int level)
    {
        if (Mode == PagingMode.Pae && level == 3)
        {
            return PageRights.All; // PDPTEs carry no rights
        }

        PageRights rights = (PageRights)((entry >> 1) & 3); // R/W -> Write, U/S -> User
        if (!_nxe || (entry & EntryNoExecute) == 0)
        {
            rights |= PageRights.Execute;
        }

        return rights;
    }

    /// <summary>The global and dirty flags of a leaf entry.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public PageRights LeafFlags(ulong entry)
    {
        PageRights flags = PageRights.None;
        if (_pge && (entry & EntryGlobal) != 0)
        {
            flags |= PageRights.Global;
        }

        if ((entry & EntryDirty) != 0)
        {
            flags |= PageRights.Dirty;
        }

        return flags;
    }

    /// <summary>The guest-physical base of the page a present, checked leaf <paramref name="entry"/> maps.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong LeafFrame(ulong entry, int level)
    {
        if (Mode == PagingMode.Legacy32)
        {
            if (level == 1)
            {
                return entry & 0xFFFF_F000;
            }

            // PSE-36: PDE bits 20:13 hold physical-address bits 39:32 of a 4 MiB page.
            ulong high = (entry >> 13) & ((1UL << _pse36Bits) - 1);
            return (entry & 0xFFC0_0000) | (high << 32);
        }

        return entry & _physicalMask & ~(EntrySpan(level) - 1);
    }

    private WalkOutcome Walk64<TMemory>(ref TMemory memory, ulong linear, PageAccess access, bool mayRace, out PageWalk walk)
        where TMemory : struct, IPageTableMemory
    {
        walk = default;
        int top = TopLevel;
        ulong table = RootTable;
        PageRights rights = PageRights.All;
        PageWalkLevels hosts = default;
        int level = top;
        for (; ; level--)
        {
            int i = top - level;
            ulong entry;
            nint host = 0;
            bool writable = false;
            walk.Tables[i] = table;
            if (Mode == PagingMode.Pae && level == 3)
            {
                entry = _pdptes[IndexOf(linear, 3)]; // checked when CR3 was loaded
            }
            else
            {
                host = memory.MapEntry(table + (ulong)IndexOf(linear, level) * 8, 8, out writable);
                entry = host == 0 ? ulong.MaxValue : Volatile.Read(ref *(ulong*)host);
            }

            if ((entry & EntryPresent) == 0)
            {
                walk.ErrorCode = ErrorCodeFor(access, present: false, reservedBit: false);
                return WalkOutcome.Faulted;
            }

            if ((entry & ReservedBits(entry, level)) != 0)
            {
                walk.ErrorCode = ErrorCodeFor(access, present: true, reservedBit: true);
                return WalkOutcome.Faulted;
            }

            rights &= RightsOf(entry, level);
            walk.Entries[i] = entry;
            hosts[i] = writable ? (ulong)host : 0;
            if (IsLeaf(entry, level))
            {
                break;
            }

            table = NextTable(entry);
        }

        return Finish(linear, access, level, top - level + 1, rights, ref hosts, mayRace, ref walk);
    }

    private WalkOutcome WalkLegacy<TMemory>(ref TMemory memory, ulong linear, PageAccess access, bool mayRace, out PageWalk walk)
        where TMemory : struct, IPageTableMemory
    {
        walk = default;
        ulong table = RootTable;
        PageRights rights = PageRights.All;
        PageWalkLevels hosts = default;
        int level = 2;
        for (; ; level--)
        {
            int i = 2 - level;
            walk.Tables[i] = table;
            nint host = memory.MapEntry(table + (ulong)IndexOf(linear, level) * 4, 4, out bool writable);
            ulong entry = host == 0 ? uint.MaxValue : Volatile.Read(ref *(uint*)host);
            if ((entry & EntryPresent) == 0)
            {
                walk.ErrorCode = ErrorCodeFor(access, present: false, reservedBit: false);
                return WalkOutcome.Faulted;
            }

            bool leaf = IsLeaf(entry, level);
            if (leaf && level == 2 && (entry & Bits(21, 13 + _pse36Bits)) != 0)
            {
                walk.ErrorCode = ErrorCodeFor(access, present: true, reservedBit: true);
                return WalkOutcome.Faulted;
            }

            rights &= RightsOf(entry, level);
            walk.Entries[i] = entry;
            hosts[i] = writable ? (ulong)host : 0;
            if (leaf)
            {
                break;
            }

            table = NextTable(entry);
        }

        return Finish(linear, access, level, 2 - level + 1, rights, ref hosts, mayRace, ref walk);
    }

    /// <summary>Checks the rights of a completed walk and sets the accessed (and dirty) bits it owes.</summary>
    private WalkOutcome Finish(ulong linear, PageAccess access, int leafLevel, int levels, PageRights rights, ref PageWalkLevels hosts, bool mayRace, ref PageWalk walk)
    {
        walk.Levels = levels;
        if (!IsAllowed(rights, access))
        {
            walk.ErrorCode = ErrorCodeFor(access, present: true, reservedBit: false);
            return WalkOutcome.Faulted;
        }

        bool write = (access & PageAccess.Write) != 0;
        for (int i = 0; i < levels; i++)
        {
            if (hosts[i] == 0)
            {
                continue; // a PDPTE register, or an entry in read-only memory
            }

            ulong old = walk.Entries[i];
            ulong wanted = old | EntryAccessed;
            if (write && i == levels - 1)
            {
                wanted |= EntryDirty;
            }

            if (wanted == old)
            {
                continue;
            }

            // Another vCPU may be changing the entry: update it only if it still holds what we checked.
            bool updated = Mode == PagingMode.Legacy32
                ? Interlocked.CompareExchange(ref *(uint*)(nint)hosts[i], (uint)wanted, (uint)old) == (uint)old
                : Interlocked.CompareExchange(ref *(ulong*)(nint)hosts[i], wanted, old) == old;
            if (!updated && mayRace)
            {
                return WalkOutcome.Raced;
            }

            if (updated)
            {
                DirtyLog?.MarkHost((nint)hosts[i]);
            }

            walk.Entries[i] = wanted;
        }

        ulong leaf = walk.Entries[levels - 1];
        ulong size = EntrySpan(leafLevel);
        walk.PageSize = size;
        walk.PhysicalAddress = LeafFrame(leaf, leafLevel) | (linear & (size - 1));
        walk.Rights = rights | LeafFlags(leaf);
        return WalkOutcome.Translated;
    }

    /// <summary>Reserved bits of a present 8-byte entry at <paramref name="level"/> (SDM tables 4-8 to 4-20).</summary>
    private ulong ReservedBits(ulong entry, int level)
    {
        ulong reserved = _reservedHigh;
        if (level == 4)
        {
            reserved |= EntryPageSize;
        }
        else if (level == 3 && (entry & EntryPageSize) != 0)
        {
            reserved |= _supports1GiBPages ? Bits(29, 13) : EntryPageSize;
        }
        else if (level == 2 && (entry & EntryPageSize) != 0)
        {
            reserved |= Bits(20, 13);
        }

        return reserved;
    }

    /// <summary>Bits <paramref name="high"/> down to <paramref name="low"/>; empty when high &lt; low.</summary>
    private static ulong Bits(int high, int low) =>
        high < low ? 0 : (high - low == 63 ? ulong.MaxValue : ((1UL << (high - low + 1)) - 1) << low);

    private enum WalkOutcome
    {
        Translated,
        Faulted,
        Raced,
    }
}
