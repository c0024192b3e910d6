using System.Text;
using SharpVisor.Memory;
using SharpVisor.Xen.Pv;

namespace SharpVisor.Xen.Tests;

/// <summary>
/// GNTTABOP_map_grant_ref / unmap_grant_ref by a PV mapper (docs/xen-pv.md, "Grant maps"): domain 2
/// is a PV domain with direct paging, domain 1 a PVH granter joined to it by an in-process link.
/// The granted page appears behind a stand-in machine frame named by the L1 entry Xen writes; the
/// guest's view is read by walking that entry, as its MMU would.
/// </summary>
public sealed class PvGrantMapTests : IDisposable
{
    private const ushort Granter = 1;
    private const ushort Mapper = 2;
    private const uint HostMap = 2;
    private const uint DeviceMap = 1;
    private const uint ReadOnlyMap = 4;
    private const uint ContainsPte = 16;

    // The granter (PVH): shared_info and its grant frame at guest frames, two granted pages.
    private const ulong GranterSharedInfo = 0x10;
    private const ulong GranterGrantFrame = 0x11;
    private const ulong GranterScratch = 0x20000;
    private const ulong WritablePage = 0x31000;
    private const ulong ReadOnlyPage = 0x30000;

    // The mapper (PV): frames 0..0x1FF are the domain's, 0x300.. its grant frames (the hypervisor's).
    private const ulong Requests = 0x10000;
    private const ulong L4 = 0x50, L3 = 0x51, L2 = 0x52, L1 = 0x40;
    private const ulong OwnPage = 0x90;
    private const ulong VaA = 0x5000, VaB = 0x6000;            // L1 slots 5 and 6
    private const ulong MapperGrantFrame = 0x300;

    private readonly GuestMemory _granterMemory = GuestMemory.CreateRam(16 << 20);
    private readonly GuestMemory _memory = GuestMemory.CreateRam(4 << 20);
    private readonly XenDomain _granter;
    private readonly XenDomain _xen;
    private readonly FakeHypercallContext _granterCpu;
    private readonly FakeHypercallContext _cpu;
    private readonly PvPageTables _tables;

    public PvGrantMapTests()
    {
        _granter = new XenDomain(_granterMemory, new XenDomainOptions { DomainId = Granter, VcpuCount = 1 });
        _granter.Connect(new FakeHypervisorHost());
        _granterCpu = new FakeHypercallContext(_granterMemory);
        AddToPhysmap(0, GranterSharedInfo);
        AddToPhysmap(1, GranterGrantFrame);

        _xen = new XenDomain(_memory, new XenDomainOptions { DomainId = Mapper, VcpuCount = 1 });
        _xen.Connect(new FakeHypervisorHost());
        _cpu = new FakeHypercallContext(_memory);
        var p2m = new PvPhysToMachine([.. Enumerable.Range(0, 0x200).Select(i => (ulong)i)], 0x400, seed: 3);
        _tables = new PvPageTables(_memory, p2m, _xen.Counters);
        _xen.AttachPvPaging(_tables);
        _xen.AttachPvGrantFrames([.. Enumerable.Range(0, XenDomain.MaxGrantFrames).Select(i => MapperGrantFrame + (ulong)i)]);
        _memory.Write<ushort>(Requests, XenDomain.DomidSelf);   // GNTTABOP_setup_table of one frame
        _memory.Write<uint>(Requests + 4, 1);
        _memory.Write<ulong>(Requests + 16, Requests + 0x100);
        Assert.Equal(0, _cpu.Call(_xen, HypercallOp.GrantTableOp, 2, Requests, 1));

        var domains = new Dictionary<ushort, (XenDomain, GrantTable)>
        {
            [Granter] = (_granter, new GrantTable(_granter)),
            [Mapper] = (_xen, new GrantTable(_xen)),
        };
        _xen.AttachGrantMapLink(new InProcessInterdomainLink(domains, Mapper));
        _granter.AttachGrantMapLink(new InProcessInterdomainLink(domains, Granter));

        // L4 → L3 → L2 → L1, the L4 pinned and the kernel base: VA 0x5000 is L1 slot 5.
        _memory.Write(L4 << 12, (L3 << 12) | 1);
        _memory.Write(L3 << 12, (L2 << 12) | 1);
        _memory.Write(L2 << 12, (L1 << 12) | 1);
        Assert.Equal(0, Mmuext(PvMmuextCommand.PinL4Table, L4));
        Assert.Equal(0, Mmuext(PvMmuextCommand.NewBaseptr, L4));

        _granterMemory.Write(WritablePage + 16, "question"u8);
        _granterMemory.Write(ReadOnlyPage, "read me"u8);
        Grant(11, Mapper, WritablePage, readOnly: false);
        Grant(10, Mapper, ReadOnlyPage, readOnly: true);
    }

    public void Dispose()
    {
        _xen.Dispose();
        _granter.Dispose();
        _memory.Dispose();
        _granterMemory.Dispose();
    }

    [Fact]
    public void AForeignGrant_IsMappedIntoThePageTables_ReadAndWrittenThroughTheGuestsView_AndUnmapped()
    {
        Balloon(0x80, 0x81);
        ulong oldEntry = (OwnPage << 12) | 3;
        Assert.Equal(0, MmuUpdate((L1 << 12) + (5 * 8), oldEntry));   // VA 0x5000 maps a page of its own first
        Assert.Equal(1, _tables.Frame(OwnPage).TypeCount);

        Assert.Equal(GrantStatus.Okay, MapGrant(VaA, HostMap, 11, Granter, out uint handle, out ulong busAddress));
        ulong entry = Pte(5);
        ulong standIn = PvPte.Frame(entry);
        Assert.Equal(standIn << 12, busAddress);                             // dev_bus_addr: what Linux puts in its P2M
        Assert.True(standIn is 0x80 or 0x81);
        Assert.Equal(PvPte.Present | PvPte.Writable | PvPte.User | PvPte.Accessed | PvPte.Dirty | PvPte.GrantMapped | PvPte.GuestKernel, entry & ~PvPte.FrameMask);
        Assert.False(_tables.Owns(standIn));
        Assert.True(_tables.Frame(standIn).GrantMapped);
        Assert.Equal(0, _tables.Frame(OwnPage).TypeCount);                   // the replaced entry's references went
        Assert.Equal(2, _tables.Frame(L1).TypeCount);                        // the L2 entry and the map
        Assert.Equal(GrantTable.Reading | GrantTable.Writing, EntryFlags(11) & (GrantTable.Reading | GrantTable.Writing));

        // The guest's view: the granter's page, both ways.
        Assert.Equal("question", GuestText(VaA + 16, 8));
        _memory.Write((standIn << 12) + 100, "answer"u8);
        Assert.Equal("answer", Text(_granterMemory, WritablePage + 100, 6));
        _granterMemory.Write(WritablePage + 200, "again"u8);
        Assert.Equal("again", GuestText(VaA + 200, 5));

        // Read-only: the entry is not writable.
        Assert.Equal(GrantStatus.Okay, MapGrant(VaB, HostMap | ReadOnlyMap, 10, Granter, out uint readOnlyHandle, out _));
        Assert.Equal(0UL, Pte(6) & PvPte.Writable);
        Assert.Equal("read me", GuestText(VaB, 7));
        Assert.Equal(GrantTable.Reading, EntryFlags(10) & (GrantTable.Reading | GrantTable.Writing));
        AssertInvariant();

        // Ordinary updates may neither overwrite a granted entry nor copy it; the balloon cannot take a stand-in.
        const ulong L1View = 0x7000;                                                                     // slot 7: the L1 itself, read-only
        Assert.Equal(0, MmuUpdate((L1 << 12) + (7 * 8), (L1 << 12) | 1));
        Assert.Equal(-XenErrno.EINVAL, MmuUpdate((L1 << 12) + (5 * 8), 0));
        Assert.Equal(-XenErrno.EINVAL, _cpu.Call(_xen, HypercallOp.UpdateVaMapping, VaA, (OwnPage << 12) | 3, 0));
        Assert.True(_tables.TryWriteL1Entry(_xen.PvPaging(0), L1View + (5 * 8), 8, _ => 0, out _, out int ptwr));  // a writable-page-table store
        Assert.Equal(-XenErrno.EINVAL, ptwr);
        Assert.Equal(-XenErrno.EINVAL, MmuUpdate((L1 << 12) + (8 * 8), entry));                       // _PAGE_GNTTAB: never the guest's to write
        Assert.Equal(-XenErrno.EBUSY, MmuUpdate((L1 << 12) + (8 * 8), entry & ~PvPte.GrantMapped));  // the stand-in is not the domain's
        Assert.Equal(entry, Pte(5));
        Assert.Equal(3, _xen.Counters["pv-refused-granted-pte"]);
        Assert.Equal(1, _xen.Counters["pv-refused-bad-flags"]);
        Assert.Equal(1, _xen.Counters["pv-refused-l1-entry"]);
        Assert.Equal(0, Balloon(standIn));
        Assert.Equal(0x200 - 2, _xen.CurrentReservationPages);                // a granted page is not the mapper's
        Assert.Equal(0, _tables.FreeFrameCount);
        AssertInvariant();

        // Unmap: another address is "old mapping invalid"; the right one clears the entry (as Xen) and the granter's flags.
        Assert.Equal(GrantStatus.GeneralError, UnmapGrant(VaB, handle));
        Assert.Equal(GrantStatus.Okay, UnmapGrant(VaA, handle));
        Assert.Equal(0UL, Pte(5));
        Assert.False(_tables.Frame(standIn).GrantMapped);
        Assert.Equal(0, EntryFlags(11) & (GrantTable.Reading | GrantTable.Writing));
        Assert.Equal(GrantStatus.BadHandle, UnmapGrant(VaA, handle));               // a double unmap
        Assert.Equal(GrantStatus.BadHandle, UnmapGrant(VaA, 9999));                 // never given
        Assert.Equal(GrantStatus.BadHandle, UnmapGrant(VaA, uint.MaxValue));
        Assert.Equal(GrantStatus.Okay, UnmapGrant(VaB, readOnlyHandle));
        Assert.Equal(0, EntryFlags(10) & (GrantTable.Reading | GrantTable.Writing));
        Assert.Equal(2, _tables.FreeFrameCount);
        Assert.Equal(0, _xen.GrantMapCount);
        Assert.Equal("question", Text(_granterMemory, WritablePage + 16, 8));      // the granter's page is its own still
        AssertInvariant();
    }

    [Fact]
    public void MapsThatXenRefuses_GetItsStatus_AndChangeNothing()
    {
        Balloon(0x80);
        ulong before = Pte(5);
        Assert.Equal(GrantStatus.BadGntref, MapGrant(VaA, 0, 11, Granter, out _, out _));                  // neither host nor device map
        Assert.Equal(GrantStatus.GeneralError, MapGrant(VaA, HostMap | DeviceMap, 11, Granter, out _, out _)); // no device maps
        Assert.Equal(GrantStatus.GeneralError, MapGrant(VaA, HostMap, 10, Granter, out _, out _));         // a read-only grant mapped writable
        Assert.Equal(GrantStatus.GeneralError, MapGrant(VaA, HostMap, 12, Granter, out _, out _));         // never granted
        Assert.Equal(GrantStatus.BadGntref, MapGrant(VaA, HostMap, 5000, Granter, out _, out _));          // beyond the granter's table
        Assert.Equal(GrantStatus.BadDomain, MapGrant(VaA, HostMap, 11, 9, out _, out _));                  // nobody runs domain 9
        Assert.Equal(GrantStatus.GeneralError, MapGrant(0x4000_0000, HostMap, 11, Granter, out _, out _)); // no L1 maps that address
        Assert.Equal(GrantStatus.GeneralError, MapGrant(0xFFFF_8000_0000_0000, HostMap, 11, Granter, out _, out _)); // Xen's range
        Assert.Equal(GrantStatus.GeneralError, MapGrant((OwnPage << 12) + 8, HostMap | ContainsPte, 11, Granter, out _, out _)); // not an L1 table
        Assert.Equal(GrantStatus.GeneralError, MapGrant((L2 << 12) + 8, HostMap | ContainsPte, 11, Granter, out _, out _));      // an L2, not an L1
        Assert.Equal(GrantStatus.GeneralError, MapGrant((L1 << 12) + 4, HostMap | ContainsPte, 11, Granter, out _, out _));      // misaligned entry
        Assert.Equal(GrantStatus.GeneralError, MapGrant((0x200UL << 12) + 8, HostMap | ContainsPte, 11, Granter, out _, out _)); // the hypervisor's frame
        Assert.Equal(0, EntryFlags(11) & (GrantTable.Reading | GrantTable.Writing));                       // every refusal released its pin

        Assert.Equal(GrantStatus.Okay, MapGrant(VaA, HostMap, 11, Granter, out uint handle, out _));
        Assert.Equal(GrantStatus.GeneralError, MapGrant(VaA, HostMap | ReadOnlyMap, 10, Granter, out _, out _)); // over a grant map
        Assert.Equal(GrantStatus.NoDeviceSpace, MapGrant(VaB, HostMap | ReadOnlyMap, 10, Granter, out _, out _)); // no free frame to stand in
        Assert.Equal(0, EntryFlags(10) & (GrantTable.Reading | GrantTable.Writing));
        Assert.Equal(0UL, Pte(6));
        Assert.Equal(GrantStatus.Okay, UnmapGrant(VaA, handle));
        Assert.Equal(before, Pte(5));
        Assert.True(_xen.Counters["grant-map-status-1"] >= 10);
        AssertInvariant();
    }

    [Fact]
    public void AMapByEntryAddress_WritesThatEntry_AndTheDomainsOwnGrantHoldsAWritableTypeOnItsFrame()
    {
        Balloon(0x80, 0x81);
        _memory.Write(OwnPage << 12, "own page"u8);
        GrantOwn(20, OwnPage, readOnly: false);
        GrantOwn(21, L1, readOnly: false);          // its own page table, writable
        GrantOwn(22, 0x81, readOnly: true);         // a frame it gave back

        ulong entryAddress = (L1 << 12) + (6 * 8);
        Assert.Equal(GrantStatus.Okay, MapGrant(entryAddress, HostMap | ContainsPte, 20, Mapper, out uint handle, out ulong busAddress));
        Assert.Equal(busAddress >> 12, PvPte.Frame(Pte(6)));
        Assert.Equal("own page", GuestText(VaB, 8));
        Assert.Equal(PvPageType.Writable, _tables.TypeInUse(OwnPage));           // as Xen's get_page_and_type(PGT_writable_page): never a table meanwhile
        Assert.Equal(GrantStatus.BadPage, MapGrant(VaA, HostMap, 21, Mapper, out _, out _));
        Assert.Equal(GrantStatus.BadPage, MapGrant(VaA, HostMap | ReadOnlyMap, 22, Mapper, out _, out _));
        AssertInvariant([(OwnPage, PvPageType.Writable)]);

        Assert.Equal(GrantStatus.GeneralError, UnmapGrant(VaB, handle));          // a contains_pte map is unmapped by its entry's address
        Assert.Equal(GrantStatus.Okay, UnmapGrant(entryAddress, handle));
        Assert.Equal(0UL, Pte(6));
        Assert.Equal(PvPageType.None, _tables.TypeInUse(OwnPage));
        Assert.Equal("own page", Text(_memory, OwnPage << 12, 8));
        AssertInvariant();
    }

    [Fact]
    public void DomainDeath_ReleasesEveryMap()
    {
        Balloon(0x80, 0x81);
        Assert.Equal(GrantStatus.Okay, MapGrant(VaA, HostMap, 11, Granter, out _, out _));
        Assert.Equal(GrantStatus.Okay, MapGrant(VaB, HostMap | ReadOnlyMap, 10, Granter, out _, out _));
        Assert.Equal(0, Mmuext(PvMmuextCommand.UnpinTable, L4));                   // the base pointer keeps the tables in use
        Assert.Equal(2, _xen.GrantMapCount);

        _xen.Dispose();
        Assert.Equal(0, _xen.GrantMapCount);
        Assert.Empty(_tables.GrantMappings);
        Assert.Equal(0UL, Pte(5) | Pte(6));
        Assert.Equal(2, _tables.FreeFrameCount);
        Assert.Equal(0, EntryFlags(11) & (GrantTable.Reading | GrantTable.Writing));
        Assert.Equal(0, EntryFlags(10) & (GrantTable.Reading | GrantTable.Writing));
        Assert.Equal(1, _tables.Frame(L1).TypeCount);
        AssertInvariant();
    }

    private void AssertInvariant(IEnumerable<(ulong, PvPageType)>? held = null)
    {
        PvVcpuPaging vcpu = _xen.PvPaging(0);
        string? violation = PvFrameTableInvariant.Check(_tables, _memory, [vcpu.KernelBase, vcpu.UserBase], held ?? []);
        Assert.True(violation is null, violation);
    }

    private ulong Pte(int slot) => _memory.Read<ulong>((L1 << 12) + ((ulong)slot * 8));

    /// <summary>What the guest reads at a linear address under L1: through the entry, as its MMU walks.</summary>
    private string GuestText(ulong linearAddress, int length)
    {
        ulong entry = Pte((int)((linearAddress >> 12) & 511));
        Assert.NotEqual(0UL, entry & PvPte.Present);
        return Text(_memory, (PvPte.Frame(entry) << 12) + (linearAddress & 0xFFF), length);
    }

    private short MapGrant(ulong hostAddress, uint flags, uint reference, ushort domain, out uint handle, out ulong busAddress)
    {
        const ulong op = Requests + 0x200;
        _memory.Write(op, hostAddress);
        _memory.Write(op + 8, flags);
        _memory.Write(op + 12, reference);
        _memory.Write(op + 16, domain);
        _memory.Write<short>(op + 18, 99);
        Assert.Equal(0, _cpu.Call(_xen, HypercallOp.GrantTableOp, 0, op, 1));
        handle = _memory.Read<uint>(op + 20);
        busAddress = _memory.Read<ulong>(op + 24);
        return _memory.Read<short>(op + 18);
    }

    private short UnmapGrant(ulong hostAddress, uint handle)
    {
        const ulong op = Requests + 0x200;
        _memory.Write(op, hostAddress);
        _memory.Write(op + 8, 0UL);
        _memory.Write(op + 16, handle);
        _memory.Write<short>(op + 20, 99);
        Assert.Equal(0, _cpu.Call(_xen, HypercallOp.GrantTableOp, 1, op, 1));
        return _memory.Read<short>(op + 20);
    }

    private long MmuUpdate(ulong ptr, ulong value)
    {
        _memory.Write(Requests, ptr);
        _memory.Write(Requests + 8, value);
        return _cpu.Call(_xen, HypercallOp.MmuUpdate, Requests, 1, 0, XenDomain.DomidSelf);
    }

    private long Mmuext(PvMmuextCommand command, ulong argument)
    {
        _memory.Write(Requests, (ulong)(uint)command);
        _memory.Write(Requests + 8, argument);
        _memory.Write(Requests + 16, 0UL);
        return _cpu.Call(_xen, HypercallOp.MmuextOp, Requests, 1, 0, XenDomain.DomidSelf);
    }

    /// <summary>decrease_reservation of machine frames (the pool the stand-ins come from); the extents done.</summary>
    private long Balloon(params ulong[] frames)
    {
        const ulong reservation = Requests + 0x400;
        for (int i = 0; i < frames.Length; i++)
        {
            _memory.Write(reservation + 0x100 + ((ulong)i * 8), frames[i]);
        }

        _memory.Write(reservation, reservation + 0x100);
        _memory.Write(reservation + 8, (ulong)frames.Length);
        _memory.Write(reservation + 16, 0UL);
        _memory.Write<ushort>(reservation + 24, XenDomain.DomidSelf);
        return _cpu.Call(_xen, HypercallOp.MemoryOp, 1, reservation);
    }

    private void AddToPhysmap(uint space, ulong gfn)
    {
        _granterMemory.Write<ushort>(GranterScratch, XenDomain.DomidSelf);
        _granterMemory.Write(GranterScratch + 4, space);
        _granterMemory.Write(GranterScratch + 8, 0UL);
        _granterMemory.Write(GranterScratch + 16, gfn);
        Assert.Equal(0, _granterCpu.Call(_granter, HypercallOp.MemoryOp, 7, GranterScratch));
    }

    private void Grant(uint reference, ushort grantee, ulong page, bool readOnly)
    {
        ulong entry = (GranterGrantFrame << 12) + (reference * 8);
        _granterMemory.Write(entry + 4, (uint)(page >> 12));
        _granterMemory.Write(entry + 2, grantee);
        _granterMemory.Write(entry, (ushort)(GrantTable.PermitAccess | (readOnly ? GrantTable.ReadOnly : 0)));
    }

    private void GrantOwn(uint reference, ulong machineFrame, bool readOnly)
    {
        ulong entry = (MapperGrantFrame << 12) + (reference * 8);
        _memory.Write(entry + 4, (uint)machineFrame);
        _memory.Write(entry + 2, Mapper);
        _memory.Write(entry, (ushort)(GrantTable.PermitAccess | (readOnly ? GrantTable.ReadOnly : 0)));
    }

    private int EntryFlags(uint reference) => _granterMemory.Read<ushort>((GranterGrantFrame << 12) + (reference * 8));

    private static string Text(GuestMemory memory, ulong address, int length)
    {
        byte[] bytes = new byte[length];
        memory.Read(address, bytes);
        return Encoding.ASCII.GetString(bytes);
    }
}
