namespace SharpVisor.Xen.Pv;

/// <summary>Page-table entry bits and masks as Xen's 64-bit PV checks them (xen/arch/x86/mm.c, pv/mm.h).</summary>
internal static class PvPte
{
    public const ulong Present = 1UL << 0;
    public const ulong Writable = 1UL << 1;
    public const ulong User = 1UL << 2;
    public const ulong WriteThrough = 1UL << 3;
    public const ulong CacheDisable = 1UL << 4;
    public const ulong Accessed = 1UL << 5;
    public const ulong Dirty = 1UL << 6;
    public const ulong LargeOrPat = 1UL << 7;
    public const ulong Global = 1UL << 8;
    public const ulong NoExecute = 1UL << 63;

    /// <summary>Xen's _PAGE_GUEST_KERNEL (bit 52): marks a kernel mapping it made user-accessible.</summary>
    public const ulong GuestKernel = 1UL << 52;

    /// <summary>
    /// Xen's _PAGE_GNTTAB (bit 62, ignored by the MMU): an L1 entry the hypervisor wrote for a grant
    /// map. A guest may never set it (the L1 disallow mask), so only GNTTABOP_map_grant_ref makes one.
    /// </summary>
    public const ulong GrantMapped = 1UL << 62;

    /// <summary>Bits 12-51: the machine frame (MAXPHYADDR 52).</summary>
    public const ulong FrameMask = 0x000F_FFFF_FFFF_F000;

    /// <summary>Xen's base_disallow_mask: everything but P, RW, US, A, D, AVAIL (9-11), AVAIL_HIGH (52-62), NX.</summary>
    private const ulong Allowed = Present | Writable | User | Accessed | Dirty | (7UL << 9) | (0x7FFUL << 52) | NoExecute | FrameMask;

    /// <summary>L1 also allows Global (user mappings) but not _PAGE_GNTTAB; cache attributes stay refused for an unprivileged domain.</summary>
    public static ulong DisallowMask(int level) => level == 1 ? ~(Allowed | Global) | GrantMapped : ~Allowed;

    /// <summary>Xen's L4 slots 256-271 (0xFFFF800000000000-0xFFFF87FFFFFFFFFF) belong to the hypervisor.</summary>
    public const int FirstHypervisorSlot = 256;

    public const int LastHypervisorSlot = 271;

    public static bool IsHypervisorL4Slot(int slot) => slot >= FirstHypervisorSlot && slot <= LastHypervisorSlot;

    public static ulong Frame(ulong entry) => (entry & FrameMask) >> 12;

    /// <summary>
    /// adjust_guest_l1e..l4e for a 64-bit PV guest: its kernel runs at CPL 3, so every present entry
    /// is user-accessible; an L1 kernel mapping is tagged _PAGE_GUEST_KERNEL, a user one made global.
    /// </summary>
    public static ulong Adjust(int level, ulong entry)
    {
        if ((entry & Present) == 0)
        {
            return entry;
        }

        if (level != 1)
        {
            return entry | User;
        }

        if ((entry & User) == 0)
        {
            entry |= GuestKernel | User;
        }

        return (entry & GuestKernel) == 0 ? entry | Global | User : entry;
    }
}
