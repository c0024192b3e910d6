using SharpVisor.Memory;

namespace SharpVisor.Xen.Tests;

/// <summary>
/// Grant maps whose target lies outside the mapper's RAM, where Linux's unpopulated-alloc pages
/// are (docs/xen.md, "Map targets outside RAM"): inside the domain's window the granted page
/// appears there as memory, the unmap leaves a zero page, the page is reused, and everything
/// else — the MMIO hole, past the window, a grant frame, handing the target to the hypervisor as
/// a page of the domain's — is refused.
/// </summary>
public sealed partial class XenInterdomainTests
{
    private const ulong UnpopulatedSection = 0x1000_0000;   // where Linux's first 128 MiB section lands above 16 MiB of RAM

    [Fact]
    public void MapGrant_IntoUnpopulatedSpaceAboveRamShowsThePeersPageThenAZeroPage()
    {
        _a.MapGrantFrame();
        _a.Memory.Write(WritablePage + 16, "question"u8);
        _a.Memory.Write(ReadOnlyPage, "read me"u8);
        _a.Grant(11, DomainB, WritablePage, readOnly: false);
        _a.Grant(10, DomainB, ReadOnlyPage, readOnly: true);
        ulong target = UnpopulatedSection + 0x7FF_F000;   // Linux hands out a section's pages from the top
        Assert.False(_b.Memory.IsValid(target, 4096));

        Assert.Equal(GrantStatus.Okay, MapGrant(_b, target, HostMap, 11, DomainA, out uint handle));
        MemoryRegion region = Assert.Single(_b.Memory.Regions, r => r.IsMapTarget);
        Assert.Equal(target, region.GuestPhysicalAddress);
        Assert.False(region.IsRam);
        Assert.Equal(16UL << 20, _b.Memory.RamSize);   // a target is not RAM
        Assert.Equal("question", Text(_b, target + 16, 8));
        _b.Memory.Write(target + 100, "answer"u8);
        Assert.Equal("answer", Text(_a, WritablePage + 100, 6));
        _a.Memory.Write(WritablePage + 200, "again"u8);
        Assert.Equal("again", Text(_b, target + 200, 5));
        Assert.Equal(GrantTable.Reading | GrantTable.Writing, EntryFlags(_a, 11) & (GrantTable.Reading | GrantTable.Writing));

        // Unmapped: A's flags clear, the target reads zeros (Xen leaves the frame empty), A's page keeps B's answer.
        Assert.Equal(GrantStatus.Okay, UnmapGrant(_b, target, handle));
        Assert.Equal(0, EntryFlags(_a, 11) & (GrantTable.Reading | GrantTable.Writing));
        Assert.True(_b.Memory.GetSpan(target, 4096).IndexOfAnyExcept((byte)0) < 0);
        Assert.Equal("answer", Text(_a, WritablePage + 100, 6));

        // The same page again, read-only: the region is reused, B's writes stay in its private copy.
        Assert.Equal(GrantStatus.Okay, MapGrant(_b, target, HostMap | MapReadOnly, 10, DomainA, out uint readOnlyHandle));
        Assert.Equal("read me", Text(_b, target, 7));
        _b.Memory.Write(target, "scribble"u8);
        Assert.Equal("read me", Text(_a, ReadOnlyPage, 7));
        Assert.Equal(GrantStatus.Okay, UnmapGrant(_b, target, readOnlyHandle));
        Assert.True(_b.Memory.GetSpan(target, 4096).IndexOfAnyExcept((byte)0) < 0);
        Assert.Equal(1, _b.Xen.MapTargetPageCount);
        Assert.Equal(1, _b.Memory.MapTargetPageCount);

        // Above 4 GiB and the window's last page are targets too; B's RAM and the target pages still count as before.
        ulong high = GuestMemory.HighMemoryStart + 0x2000;
        ulong last = _b.Xen.MapTargetWindowEnd - 4096;
        Assert.Equal(GrantStatus.Okay, MapGrant(_b, high, HostMap, 11, DomainA, out uint highHandle));
        Assert.Equal(GrantStatus.Okay, MapGrant(_b, last, HostMap | MapReadOnly, 10, DomainA, out uint lastHandle));
        Assert.Equal("question", Text(_b, high + 16, 8));
        Assert.Equal("read me", Text(_b, last, 7));
        Assert.Equal(GrantStatus.Okay, UnmapGrant(_b, high, highHandle));
        Assert.Equal(GrantStatus.Okay, UnmapGrant(_b, last, lastHandle));
        Assert.Equal(3, _b.Xen.MapTargetPageCount);
        Assert.Equal(3, _b.Xen.Counters["grant-map-targets-outside-ram"]);
        Assert.Equal(0, _b.Xen.GrantMapCount);
        Assert.Equal(GuestMemory.HighMemoryStart + XenDomain.MapTargetWindowSize, _b.Xen.MapTargetWindowEnd);
    }

    [Fact]
    public void MapGrant_RefusesTargetsOutsideTheWindowAndTargetsAsTheDomainsOwnPages()
    {
        _a.MapGrantFrame();
        _a.Grant(11, DomainB, WritablePage, readOnly: false);
        _b.MapGrantFrame();
        ulong target = UnpopulatedSection;

        Assert.Equal(GrantStatus.GeneralError, MapGrant(_b, GuestMemory.MmioHoleStart, HostMap, 11, DomainA, out _));           // the MMIO hole
        Assert.Equal(GrantStatus.GeneralError, MapGrant(_b, GuestMemory.HighMemoryStart - 4096, HostMap, 11, DomainA, out _));  // its last page
        Assert.Equal(GrantStatus.GeneralError, MapGrant(_b, _b.Xen.MapTargetWindowEnd, HostMap, 11, DomainA, out _));           // past the window
        Assert.Equal(GrantStatus.GeneralError, MapGrant(_b, 1UL << 40, HostMap, 11, DomainA, out _));
        Assert.Equal(0, _b.Xen.MapTargetPageCount);
        Assert.DoesNotContain(_b.Memory.Regions, r => r.IsMapTarget);

        // A grant frame B put outside its RAM (as Linux's PVH grant table does) is no target.
        ulong frame = target + 0x10_0000;
        Assert.Equal(0, AddToPhysmap(_b, space: 1, index: 1, frame >> 12));
        Assert.Equal(GrantStatus.GeneralError, MapGrant(_b, frame, HostMap, 11, DomainA, out _));

        // A refused map (A never granted ref 12) leaves no target behind.
        Assert.Equal(GrantStatus.GeneralError, MapGrant(_b, target, HostMap, 12, DomainA, out _));
        Assert.Equal(0, _b.Xen.MapTargetPageCount);
        Assert.False(_b.Memory.IsValid(target, 4096));

        Assert.Equal(GrantStatus.Okay, MapGrant(_b, target, HostMap, 11, DomainA, out uint handle));
        Assert.Equal(GrantStatus.GeneralError, MapGrant(_b, target, HostMap, 11, DomainA, out _));   // over a map

        // A target is not a page of B's: not a grant frame, not shared_info, not something B may grant or balloon.
        Assert.Equal(-22, AddToPhysmap(_b, space: 1, index: 2, target >> 12));
        Assert.Equal(-22, AddToPhysmap(_b, space: 0, index: 0, target >> 12));
        ulong bGrantFrame = GrantFrameGfn << 12;
        _b.Memory.Write<uint>(bGrantFrame + (30 * 8) + 4, (uint)(target >> 12));
        _b.Memory.Write<ushort>(bGrantFrame + (30 * 8) + 2, DomainA);
        _b.Memory.Write<ushort>(bGrantFrame + (30 * 8), GrantTable.PermitAccess);
        Assert.Equal(GrantStatus.BadPage, MapGrant(_a, TargetPage, HostMap, 30, DomainB, out _));
        _b.Memory.Write<ushort>(bGrantFrame + (31 * 8) + 2, DomainB);
        _b.Memory.Write<uint>(bGrantFrame + (31 * 8) + 4, (uint)(target >> 12));
        _b.Memory.Write<ushort>(bGrantFrame + (31 * 8), GrantTable.PermitAccess);
        Assert.Equal(GrantStatus.BadPage, MapGrant(_b, TargetPage, HostMap, 31, DomainB, out _));
        Assert.Equal(0, DecreaseReservation(_b, target >> 12));

        Assert.Equal(GrantStatus.Okay, UnmapGrant(_b, target, handle));
        Assert.Equal(GrantStatus.BadPage, MapGrant(_b, TargetPage, HostMap, 31, DomainB, out _));   // unmapped, still not B's page
        Assert.Equal(0, EntryFlags(_a, 11) & (GrantTable.Reading | GrantTable.Writing));
    }

    [Fact]
    public void MapGrant_ATargetShowingAPeersPageMayBeGrantedOnForCopies()
    {
        // A Linux driver domain's blkback hands the pages it mapped to its own disk, whose blkfront
        // grants them to Dom0: Dom0's blkback copies into and out of the front end's page.
        _a.MapGrantFrame();
        _b.MapGrantFrame();
        _a.Memory.Write(WritablePage, "from A"u8);
        _a.Grant(11, DomainB, WritablePage, readOnly: false);
        ulong target = UnpopulatedSection;
        Assert.Equal(GrantStatus.Okay, MapGrant(_b, target, HostMap, 11, DomainA, out uint handle));
        _b.Grant(40, 0, target, readOnly: false);
        var dom0 = new GrantTable(_b.Xen);

        byte[] read = new byte[6];
        Assert.Equal(GrantStatus.Okay, dom0.TryCopyFrom(0, 40, 0, read));
        Assert.Equal("from A", System.Text.Encoding.ASCII.GetString(read));
        Assert.Equal(GrantStatus.Okay, dom0.TryCopyTo(0, 40, 64, "disk data"u8));
        Assert.Equal("disk data", Text(_a, WritablePage + 64, 9));

        Assert.Equal(GrantStatus.Okay, UnmapGrant(_b, target, handle));
        Assert.Equal(GrantStatus.Okay, dom0.TryCopyFrom(0, 40, 0, read));   // the target's own page now: zeros, nothing of A's
        Assert.True(read.AsSpan().IndexOfAnyExcept((byte)0) < 0);
    }

    [Fact]
    public void MapGrant_TargetsOutsideRamAreBoundedPerDomain()
    {
        _a.MapGrantFrame();
        _a.Grant(10, DomainB, ReadOnlyPage, readOnly: true);
        ulong first = GuestMemory.HighMemoryStart;
        for (int i = 0; i < XenDomain.MaxMapTargetPages; i++)
        {
            ulong page = first + ((ulong)i * 4096);
            Assert.Equal(GrantStatus.Okay, MapGrant(_b, page, HostMap | MapReadOnly, 10, DomainA, out uint handle));
            Assert.Equal(GrantStatus.Okay, UnmapGrant(_b, page, handle));
        }

        ulong beyond = first + ((ulong)XenDomain.MaxMapTargetPages * 4096);
        Assert.Equal(GrantStatus.NoDeviceSpace, MapGrant(_b, beyond, HostMap | MapReadOnly, 10, DomainA, out _));
        Assert.Equal(GrantStatus.Okay, MapGrant(_b, first + 4096, HostMap | MapReadOnly, 10, DomainA, out uint reused));   // a page used before
        Assert.Equal(GrantStatus.Okay, UnmapGrant(_b, first + 4096, reused));
        Assert.Equal(XenDomain.MaxMapTargetPages, _b.Xen.MapTargetPageCount);
        Assert.Equal(XenDomain.MaxMapTargetPages, _b.Memory.MapTargetPageCount);
        Assert.Equal(0, EntryFlags(_a, 10) & (GrantTable.Reading | GrantTable.Writing));
    }

    private static long AddToPhysmap(Side side, uint space, ulong index, ulong gfn)
    {
        // struct xen_add_to_physmap { domid_t domid; u16 size; u32 space; xen_ulong_t idx; xen_pfn_t gpfn }
        side.Memory.Write<ushort>(MapOps + 0x200, XenDomain.DomidSelf);
        side.Memory.Write<ushort>(MapOps + 0x202, 0);
        side.Memory.Write(MapOps + 0x204, space);
        side.Memory.Write(MapOps + 0x208, index);
        side.Memory.Write(MapOps + 0x210, gfn);
        return side.Cpu.Call(side.Xen, HypercallOp.MemoryOp, 7, MapOps + 0x200);
    }
}
