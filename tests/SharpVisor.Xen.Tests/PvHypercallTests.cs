using SharpVisor.Memory;
using SharpVisor.Xen.Pv;

namespace SharpVisor.Xen.Tests;

/// <summary>The direct-paging hypercalls as a guest makes them: request arrays in guest memory, the done count, the foreign-domain argument.</summary>
public sealed class PvHypercallTests : IDisposable
{
    private const ulong Requests = 0x10000;
    private const ulong Done = 0x11000;
    private const ulong L1 = 0x40;
    private const ulong Data = 0x41;
    private const ulong HypervisorFrame = 0x300;   // above the domain's frames

    private readonly GuestMemory _memory = GuestMemory.CreateRam(4 << 20);
    private readonly XenDomain _xen;
    private readonly FakeHypercallContext _cpu;

    public PvHypercallTests()
    {
        _xen = new XenDomain(_memory, new XenDomainOptions());
        _xen.Connect(new FakeHypervisorHost());
        _cpu = new FakeHypercallContext(_memory);
    }

    public void Dispose()
    {
        _xen.Dispose();
        _memory.Dispose();
    }

    [Fact]
    public void WithoutPvPaging_TheOpsAreEnosys()
    {
        Assert.Equal(-XenErrno.ENOSYS, _cpu.Call(_xen, HypercallOp.MmuUpdate, Requests, 1, Done, XenDomain.DomidSelf));
        Assert.Equal(-XenErrno.ENOSYS, _cpu.Call(_xen, HypercallOp.MmuextOp, Requests, 1, Done, XenDomain.DomidSelf));
        Assert.Equal(-XenErrno.ENOSYS, _cpu.Call(_xen, HypercallOp.UpdateVaMapping, 0, 0, 0));
    }

    [Fact]
    public void MmuUpdate_StopsAtTheFirstRefusal_AndReportsHowManyWereDone()
    {
        Attach();
        WriteMmuext(0, PvMmuextCommand.PinL1Table, L1);
        Assert.Equal(0, _cpu.Call(_xen, HypercallOp.MmuextOp, Requests, 1, Done, XenDomain.DomidSelf));
        Assert.True(_xen.PvTables!.Frame(L1).Pinned);

        WriteRequest(0, L1 << 12, (Data << 12) | 3);
        WriteRequest(1, (L1 << 12) + 8, (Data << 12) | 1);
        WriteRequest(2, (L1 << 12) + 16, (L1 << 12) | 3);        // the L1 writable: refused
        WriteRequest(3, (L1 << 12) + 24, (Data << 12) | 1);
        Assert.Equal(-XenErrno.EBUSY, _cpu.Call(_xen, HypercallOp.MmuUpdate, Requests, 4, Done, XenDomain.DomidSelf));
        Assert.Equal(2u, _memory.Read<uint>(Done));
        Assert.Equal(0UL, _memory.Read<ulong>((L1 << 12) + 24));
        Assert.Equal(1, _xen.PvTables.Counters["pv-refused-l1-entry"]);

        Assert.Equal(-XenErrno.ESRCH, _cpu.Call(_xen, HypercallOp.MmuUpdate, Requests, 1, Done, 5));
        Assert.Equal(-XenErrno.EPERM, _cpu.Call(_xen, HypercallOp.MmuUpdate, Requests, 1, Done, 0));
        Assert.Equal(-XenErrno.EINVAL, _cpu.Call(_xen, HypercallOp.MmuUpdate, Requests, XenDomain.MaxPvBatch + 1UL, Done, XenDomain.DomidSelf));
        Assert.Equal(-XenErrno.EFAULT, _cpu.Call(_xen, HypercallOp.MmuUpdate, 1UL << 40, 1, Done, XenDomain.DomidSelf));
    }

    [Fact]
    public void MmuextOp_ReadsTwentyFourByteOps_AndUpdateVaMappingUsesTheCallersBase()
    {
        Attach();
        // L4 0x50 → L3 0x51 → L2 0x52 → L1: VA 0x5000 is L1 slot 5.
        _memory.Write(0x50UL << 12, (0x51UL << 12) | 1);
        _memory.Write(0x51UL << 12, (0x52UL << 12) | 1);
        _memory.Write(0x52UL << 12, (L1 << 12) | 1);
        WriteMmuext(0, PvMmuextCommand.PinL4Table, 0x50);
        WriteMmuext(1, PvMmuextCommand.NewBaseptr, 0x50);
        WriteMmuext(2, PvMmuextCommand.PinL4Table, HypervisorFrame);
        Assert.Equal(-XenErrno.EINVAL, _cpu.Call(_xen, HypercallOp.MmuextOp, Requests, 3, Done, XenDomain.DomidSelf));
        Assert.Equal(2u, _memory.Read<uint>(Done));
        Assert.Equal(0x50UL, _xen.PvPaging(0).KernelBase);

        Assert.Equal(0, _cpu.Call(_xen, HypercallOp.UpdateVaMapping, 0x5000, (Data << 12) | 3, PvPageTables.UvmfInvlpg));
        Assert.Equal((Data << 12) | 3 | 4 | PvPte.GuestKernel, _memory.Read<ulong>((L1 << 12) + (5 * 8)));
        Assert.Equal(-XenErrno.EBUSY, _cpu.Call(_xen, HypercallOp.UpdateVaMapping, 0x6000, (0x50UL << 12) | 3, 0));
        Assert.Equal(1L, _xen.Counters["mmuext_op:5"]);
    }

    [Fact]
    public void TheBalloon_GivesBackOnlyUnusedFramesOfTheDomain_AndPopulatesPfnsWithNewMachineFrames()
    {
        Attach();
        PvPageTables tables = _xen.PvTables!;
        const ulong A = 0x80, B = 0x81;
        ulong pfnA = tables.PhysToMachine.ToPhysical(A), pfnB = tables.PhysToMachine.ToPhysical(B);
        _memory.Write(A << 12, 0xFEEDUL);
        WriteMmuext(0, PvMmuextCommand.PinL1Table, L1);
        Assert.Equal(0, _cpu.Call(_xen, HypercallOp.MmuextOp, Requests, 1, Done, XenDomain.DomidSelf));

        // decrease_reservation names machine frames: both leave the domain, M2P and P2M entries invalid, the host page released.
        Assert.Equal(2, Reservation(1, [A, B]));
        Assert.False(tables.Owns(A) || tables.Owns(B));
        Assert.Equal(PvPhysToMachine.InvalidEntry, tables.PhysToMachine.ToPhysical(A));
        Assert.Equal(PvPhysToMachine.InvalidEntry, tables.PhysToMachine.P2m[(int)pfnA]);
        Assert.Equal(0UL, _memory.Read<ulong>(A << 12));
        Assert.Equal(0x200 - 2, CurrentReservation());

        // Not the domain's any more, a pinned page table, the hypervisor's frame, not memory: no extent done.
        Assert.Equal(0, Reservation(1, [A]));
        Assert.Equal(0, Reservation(1, [L1]));
        Assert.Equal(0, Reservation(1, [HypervisorFrame]));
        Assert.Equal(0, Reservation(1, [0x10_0000]));
        Assert.Equal(2, tables.Counters["pv-refused-release-not-owned"]);
        Assert.Equal(1, tables.Counters["pv-refused-release-in-use"]);
        Assert.Equal(1, tables.Counters["pv-refused-release-invalid"]);
        Assert.True(tables.Frame(L1).Pinned);

        // populate_physmap names pfns and answers the new machine frames in the list; the pool holds two, the third is refused.
        _memory.Write(A << 12, 0xBADUL);                         // whatever the host page holds, the domain gets it zeroed
        Assert.Equal(2, Reservation(6, [pfnA, pfnB, pfnA]));
        ulong first = _memory.Read<ulong>(ExtentList), second = _memory.Read<ulong>(ExtentList + 8);
        Assert.Equal(pfnA, _memory.Read<ulong>(ExtentList + 16));  // untouched: not done
        Assert.Equal(new[] { A, B }.Order(), new[] { first, second }.Order());
        Assert.Equal(pfnA, tables.PhysToMachine.ToPhysical(first));
        Assert.Equal(pfnB, tables.PhysToMachine.ToPhysical(second));
        Assert.Equal(first, tables.PhysToMachine.P2m[(int)pfnA]);
        Assert.True(tables.Owns(first) && tables.Owns(second));
        Assert.Equal(0UL, _memory.Read<ulong>(A << 12));
        Assert.Equal(1, tables.Counters["pv-refused-populate-no-memory"]);
        Assert.Equal(0, Reservation(6, [0x200]));                // past the domain's pages
        Assert.Equal(0x200, CurrentReservation());
    }

    private const ulong Reservations = 0x12000;
    private const ulong ExtentList = Reservations + 0x100;

    private long Reservation(int command, ulong[] frames)
    {
        for (int i = 0; i < frames.Length; i++)
        {
            _memory.Write(ExtentList + ((ulong)i * 8), frames[i]);
        }

        _memory.Write(Reservations, ExtentList);
        _memory.Write(Reservations + 8, (ulong)frames.Length);
        _memory.Write(Reservations + 16, 0UL);
        _memory.Write<ushort>(Reservations + 24, XenDomain.DomidSelf);
        return _cpu.Call(_xen, HypercallOp.MemoryOp, (ulong)command, Reservations);
    }

    private long CurrentReservation()
    {
        _memory.Write<ushort>(Reservations, XenDomain.DomidSelf);
        return _cpu.Call(_xen, HypercallOp.MemoryOp, 3, Reservations);
    }

    private void Attach()
    {
        var p2m = new PvPhysToMachine([.. Enumerable.Range(0, 0x200).Select(i => (ulong)i)], 0x400, seed: 1);
        _xen.AttachPvPaging(new PvPageTables(_memory, p2m, _xen.Counters));
    }

    private void WriteRequest(int index, ulong ptr, ulong value)
    {
        _memory.Write(Requests + ((ulong)index * 16), ptr);
        _memory.Write(Requests + ((ulong)index * 16) + 8, value);
    }

    private void WriteMmuext(int index, PvMmuextCommand command, ulong argument1, ulong argument2 = 0)
    {
        ulong at = Requests + ((ulong)index * 24);
        _memory.Write(at, (ulong)(uint)command);
        _memory.Write(at + 8, argument1);
        _memory.Write(at + 16, argument2);
    }
}
