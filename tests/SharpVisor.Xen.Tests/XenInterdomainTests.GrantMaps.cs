using System.Text;

namespace SharpVisor.Xen.Tests;

/// <summary>
/// GNTTABOP_map_grant_ref / unmap_grant_ref between the two domains (docs/xen.md, "Grant
/// mapping"): B sees A's granted page at its own guest-physical page until it unmaps, writes
/// reach A only through a writable grant, every bad case gets Xen's GNTST status.
/// </summary>
public sealed partial class XenInterdomainTests
{
    private const uint HostMap = 2;
    private const uint MapReadOnly = 4;
    private const ulong TargetPage = 0x50000;
    private const ulong SecondTarget = 0x51000;
    private const ulong MapOps = 0x22000;

    [Fact]
    public void MapGrant_ShowsThePeersPageUntilUnmapThenTheDomainsOwnPage()
    {
        _a.MapGrantFrame();
        _a.Memory.Write(WritablePage + 16, "question"u8);
        _a.Memory.Write(ReadOnlyPage, "read me"u8);
        _a.Grant(11, DomainB, WritablePage, readOnly: false);
        _a.Grant(10, DomainB, ReadOnlyPage, readOnly: true);
        _b.Memory.Write(TargetPage + 16, "B's own!"u8);

        Assert.Equal(GrantStatus.Okay, MapGrant(_b, TargetPage, HostMap, 11, DomainA, out uint handle));
        Assert.Equal("question", Text(_b, TargetPage + 16, 8));
        Assert.Equal(GrantTable.Reading | GrantTable.Writing, EntryFlags(_a, 11) & (GrantTable.Reading | GrantTable.Writing));

        // B's writes land in A's page; A's later writes show through at once (one shared page).
        _b.Memory.Write(TargetPage + 100, "answer"u8);
        Assert.Equal("answer", Text(_a, WritablePage + 100, 6));
        _a.Memory.Write(WritablePage + 200, "again"u8);
        Assert.Equal("again", Text(_b, TargetPage + 200, 5));

        // A copy of the same grant does not clear the in-use flags the map needs.
        Assert.Equal(GrantStatus.Okay, _b.Copy(Gref(DomainA, 11, 16), Frame(LocalPage, 0), 8));
        Assert.Equal(GrantTable.Reading | GrantTable.Writing, EntryFlags(_a, 11) & (GrantTable.Reading | GrantTable.Writing));

        // Read-only: the guest reads A's page, its writes never reach A.
        Assert.Equal(GrantStatus.Okay, MapGrant(_b, SecondTarget, HostMap | MapReadOnly, 10, DomainA, out uint readOnlyHandle));
        Assert.Equal("read me", Text(_b, SecondTarget, 7));
        Assert.Equal(GrantTable.Reading, EntryFlags(_a, 10) & (GrantTable.Reading | GrantTable.Writing));
        _b.Memory.Write(SecondTarget, "scribble"u8);
        Assert.Equal("read me", Text(_a, ReadOnlyPage, 7));
        Assert.NotEqual(readOnlyHandle, handle);

        Assert.Equal(GrantStatus.Okay, UnmapGrant(_b, TargetPage, handle));
        Assert.Equal("B's own!", Text(_b, TargetPage + 16, 8));
        Assert.Equal(0, EntryFlags(_a, 11) & (GrantTable.Reading | GrantTable.Writing));
        Assert.Equal(GrantStatus.BadHandle, UnmapGrant(_b, TargetPage, handle));   // a double unmap
        Assert.Equal(GrantStatus.Okay, UnmapGrant(_b, SecondTarget, readOnlyHandle));
        Assert.Equal(0, EntryFlags(_a, 10) & (GrantTable.Reading | GrantTable.Writing));
        Assert.Equal(0, _b.Xen.GrantMapCount);

        Assert.Equal(4, _b.Xen.Counters["grant-map-ops"] + _b.Xen.Counters["grant-unmap-ops"] - 1);
        Assert.Equal(2, _b.Xen.Counters["grant-maps-foreign"]);
        Assert.Equal(1, _b.Xen.Counters["grant-unmap-status-4"]);
        Assert.Equal(2, _a.Xen.Counters["interdomain-grant-maps"]);
        Assert.Equal(2, _a.Xen.Counters["interdomain-grant-unmaps"]);
    }

    [Fact]
    public void MapGrant_RefusesWhatWasNotGrantedWithXensStatuses()
    {
        _a.MapGrantFrame();
        _a.Grant(10, DomainB, ReadOnlyPage, readOnly: true);
        _a.Grant(11, DomainB, WritablePage, readOnly: false);
        _a.Grant(7, 3, WritablePage, readOnly: false);
        _a.Grant(8, DomainB, 0xFFFF_F000, readOnly: false);   // a frame A does not have
        ulong bSharedInfo = SharedInfoGfn << 12;

        Assert.Equal(GrantStatus.GeneralError, MapGrant(_b, TargetPage, HostMap, 10, DomainA, out _));            // read-only grant, writable map
        Assert.Equal(GrantStatus.GeneralError, MapGrant(_b, TargetPage, HostMap, 12, DomainA, out _));            // never granted
        Assert.Equal(GrantStatus.GeneralError, MapGrant(_b, TargetPage, HostMap, 7, DomainA, out _));             // granted to domain 3
        Assert.Equal(GrantStatus.BadGntref, MapGrant(_b, TargetPage, HostMap, 5000, DomainA, out _));             // beyond A's table
        Assert.Equal(GrantStatus.BadPage, MapGrant(_b, TargetPage, HostMap, 8, DomainA, out _));                  // not A's memory
        Assert.Equal(GrantStatus.BadGntref, MapGrant(_b, TargetPage, 0, 11, DomainA, out _));                     // neither host nor device map
        Assert.Equal(GrantStatus.GeneralError, MapGrant(_b, TargetPage, HostMap | 1, 11, DomainA, out _));        // device map in a translated domain
        Assert.Equal(GrantStatus.GeneralError, MapGrant(_b, TargetPage, HostMap | 16, 11, DomainA, out _));       // contains_pte
        Assert.Equal(GrantStatus.BadDomain, MapGrant(_b, TargetPage, HostMap, 11, 9, out _));                     // nobody runs domain 9
        Assert.Equal(GrantStatus.BadDomain, MapGrant(_b, TargetPage, HostMap, 11, 0, out _));
        Assert.Equal(GrantStatus.BadDomain, MapGrant(_b, TargetPage, HostMap, 11, XenDomain.DomidSelf, out _));
        Assert.Equal(GrantStatus.GeneralError, MapGrant(_b, 0xC000_0000, HostMap, 11, DomainA, out _));           // not B's RAM
        Assert.Equal(GrantStatus.GeneralError, MapGrant(_b, _b.Xen.MapTargetWindowEnd, HostMap, 11, DomainA, out _)); // past B's map-target window
        Assert.Equal(GrantStatus.GeneralError, MapGrant(_b, bSharedInfo, HostMap, 11, DomainA, out _));           // B's shared_info
        Assert.Equal(0, EntryFlags(_a, 11) & (GrantTable.Reading | GrantTable.Writing));                          // nothing left in use

        Assert.Equal(GrantStatus.Okay, MapGrant(_b, TargetPage, HostMap, 11, DomainA, out uint handle));
        Assert.Equal(GrantStatus.GeneralError, MapGrant(_b, TargetPage, HostMap | MapReadOnly, 10, DomainA, out _)); // over a map
        Assert.Equal(GrantStatus.BadHandle, UnmapGrant(_b, TargetPage, 99_999));
        Assert.Equal(GrantStatus.BadHandle, UnmapGrant(_b, TargetPage, handle + 1));
        Assert.Equal(GrantStatus.GeneralError, UnmapGrant(_b, SecondTarget, handle));                             // another address

        // The balloon may neither give back a mapped frame (B's target) nor a frame a peer maps (A's page).
        Assert.Equal(0, DecreaseReservation(_b, TargetPage >> 12));
        Assert.Equal(0, DecreaseReservation(_a, WritablePage >> 12));

        // A batch: each operation its own status.
        _b.Memory.Write<ulong>(MapOps, SecondTarget);
        _b.Memory.Write<uint>(MapOps + 8, HostMap | MapReadOnly);
        _b.Memory.Write<uint>(MapOps + 12, 10);
        _b.Memory.Write<ushort>(MapOps + 16, DomainA);
        _b.Memory.Write<ulong>(MapOps + 32, SecondTarget + 4096);
        _b.Memory.Write<uint>(MapOps + 40, HostMap);
        _b.Memory.Write<uint>(MapOps + 44, 12);
        _b.Memory.Write<ushort>(MapOps + 48, DomainA);
        Assert.Equal(0, _b.Cpu.Call(_b.Xen, HypercallOp.GrantTableOp, 0, MapOps, 2));
        Assert.Equal(GrantStatus.Okay, _b.Memory.Read<short>(MapOps + 18));
        Assert.Equal(GrantStatus.GeneralError, _b.Memory.Read<short>(MapOps + 32 + 18));
        Assert.Equal(-22, _b.Cpu.Call(_b.Xen, HypercallOp.GrantTableOp, 0, MapOps, XenDomain.MaxMapBatch + 1));

        // A gone: new maps fail, the page B holds stays readable until B unmaps it; A releases B's maps.
        _linkOfB.Gone.Add(DomainA);
        Assert.Equal(GrantStatus.BadDomain, MapGrant(_b, SecondTarget + 8192, HostMap, 11, DomainA, out _));
        _a.Memory.Write(WritablePage, "still"u8);
        Assert.Equal("still", Text(_b, TargetPage, 5));
        Assert.Equal(2, _a.Xen.ReleaseGrantMaps(DomainB));
        Assert.Equal(0, EntryFlags(_a, 11) & (GrantTable.Reading | GrantTable.Writing));
        Assert.Equal(GrantStatus.Okay, UnmapGrant(_b, TargetPage, handle));
    }

    [Fact]
    public void MapGrant_OfTheDomainsOwnGrantSharesItsOwnPage()
    {
        _a.MapGrantFrame();
        _a.Grant(20, DomainA, WritablePage, readOnly: false);
        _a.Memory.Write(WritablePage, "mine"u8);

        Assert.Equal(GrantStatus.Okay, MapGrant(_a, TargetPage, HostMap, 20, DomainA, out uint handle));
        Assert.Equal("mine", Text(_a, TargetPage, 4));
        _a.Memory.Write(TargetPage + 8, "alias"u8);
        Assert.Equal("alias", Text(_a, WritablePage + 8, 5));
        _a.Grant(21, DomainA, TargetPage, readOnly: false);
        Assert.Equal(GrantStatus.BadPage, MapGrant(_a, SecondTarget, HostMap, 21, DomainA, out _));   // a grant of a grant-mapped frame
        Assert.Equal(GrantStatus.Okay, UnmapGrant(_a, TargetPage, handle));
        Assert.Equal(0, _a.Xen.Counters["grant-maps-foreign"]);
    }

    private static short MapGrant(Side side, ulong hostAddress, uint flags, uint reference, ushort domain, out uint handle)
    {
        side.Memory.Write<ulong>(MapOps, hostAddress);
        side.Memory.Write<uint>(MapOps + 8, flags);
        side.Memory.Write<uint>(MapOps + 12, reference);
        side.Memory.Write<ushort>(MapOps + 16, domain);
        side.Memory.Write<short>(MapOps + 18, 99);
        Assert.Equal(0, side.Cpu.Call(side.Xen, HypercallOp.GrantTableOp, 0, MapOps, 1));
        handle = side.Memory.Read<uint>(MapOps + 20);
        return side.Memory.Read<short>(MapOps + 18);
    }

    private static short UnmapGrant(Side side, ulong hostAddress, uint handle)
    {
        side.Memory.Write<ulong>(MapOps, hostAddress);
        side.Memory.Write<ulong>(MapOps + 8, 0);
        side.Memory.Write<uint>(MapOps + 16, handle);
        side.Memory.Write<short>(MapOps + 20, 99);
        Assert.Equal(0, side.Cpu.Call(side.Xen, HypercallOp.GrantTableOp, 1, MapOps, 1));
        return side.Memory.Read<short>(MapOps + 20);
    }

    private static long DecreaseReservation(Side side, ulong gfn)
    {
        // struct xen_memory_reservation { handle extent_start; nr_extents; extent_order; mem_flags; domid }
        side.Memory.Write<ulong>(MapOps + 0x100, gfn);
        side.Memory.Write<ulong>(MapOps, MapOps + 0x100);
        side.Memory.Write<ulong>(MapOps + 8, 1);
        side.Memory.Write<uint>(MapOps + 16, 0);
        side.Memory.Write<uint>(MapOps + 20, 0);
        side.Memory.Write<ushort>(MapOps + 24, XenDomain.DomidSelf);
        return side.Cpu.Call(side.Xen, HypercallOp.MemoryOp, 1, MapOps);
    }

    private static int EntryFlags(Side side, uint reference) => side.Memory.Read<ushort>((GrantFrameGfn << 12) + (reference * 8));

    private static string Text(Side side, ulong address, int length)
    {
        byte[] bytes = new byte[length];
        side.Memory.Read(address, bytes);
        return Encoding.ASCII.GetString(bytes);
    }
}
