using SharpVisor.Memory;

namespace SharpVisor.Xen.Tests;

/// <summary>
/// Two domains (1 = A, the granter and allocator; 2 = B, the binder) joined by a link: event
/// channels across them (alloc_unbound, bind_interdomain, send, close, status, a peer that goes
/// away) and GNTTABOP_copy with a foreign source or destination, every bad case answered with
/// Xen's GNTST status.
/// </summary>
public sealed partial class XenInterdomainTests : IDisposable
{
    private const ushort DomainA = 1;
    private const ushort DomainB = 2;
    private const ulong SharedInfoGfn = 0x10;
    private const ulong GrantFrameGfn = 0x11;
    private const ulong Scratch = 0x20000;
    private const ulong CallbackVector = 0xF3;
    private const ulong ReadOnlyPage = 0x30000;
    private const ulong WritablePage = 0x31000;
    private const ulong LocalPage = 0x40000;

    private readonly Side _a = new(DomainA);
    private readonly Side _b = new(DomainB);
    private readonly InProcessInterdomainLink _linkOfA;
    private readonly InProcessInterdomainLink _linkOfB;

    public XenInterdomainTests()
    {
        var domains = new Dictionary<ushort, (XenDomain, GrantTable)>
        {
            [DomainA] = (_a.Xen, new GrantTable(_a.Xen)),
            [DomainB] = (_b.Xen, new GrantTable(_b.Xen)),
        };
        _linkOfA = new InProcessInterdomainLink(domains, DomainA);
        _linkOfB = new InProcessInterdomainLink(domains, DomainB);
        _a.Xen.AttachInterdomainLink(_linkOfA);
        _b.Xen.AttachInterdomainLink(_linkOfB);
        _a.Xen.AttachGrantMapLink(_linkOfA);
        _b.Xen.AttachGrantMapLink(_linkOfB);
    }

    public void Dispose()
    {
        _a.Dispose();
        _b.Dispose();
    }

    [Fact]
    public void BindInterdomain_ConnectsTwoDomainsBothWaysAndStatusReportsIt()
    {
        uint portA = _a.AllocUnbound(DomainB);
        Assert.Equal((1u, (uint)DomainB, 0u), _a.Status(portA));   // unbound, for domain 2

        Assert.Equal(0, _b.BindInterdomain(DomainA, portA, out uint portB));
        Assert.Equal((2u, (uint)DomainA, portB), _b.Status(portB));
        Assert.Equal((2u, (uint)DomainB, portB), _a.Status(portA));

        Assert.Equal(0, _b.Send(portB));
        Assert.True(_a.IsPending(portA));
        Assert.True(_a.Xen.TryGetPendingUpcall(0, out byte vector));
        Assert.Equal((byte)CallbackVector, vector);
        Assert.False(_b.IsPending(portB));

        Assert.Equal(0, _a.Send(portA));
        Assert.True(_b.IsPending(portB));
        Assert.Equal(1, _a.Xen.Counters["interdomain-sends"]);
        Assert.Equal(1, _b.Xen.Counters["interdomain-sends-in"]);
        Assert.Equal([((int)portA, DomainB, (int)portB)], _a.Xen.InterdomainPorts());

        // A port already bound, a port unbound for someone else, a domain nobody runs.
        Assert.Equal(-22, _b.BindInterdomain(DomainA, portA, out _));
        uint forOther = _a.AllocUnbound(7);
        Assert.Equal(-22, _b.BindInterdomain(DomainA, forOther, out _));
        Assert.Equal(-3, _b.BindInterdomain(9, 1, out _));
        Assert.Equal(-22, _b.BindInterdomain(DomainA, 5000, out _));
        Assert.Equal(2, _b.Xen.Counters["interdomain-binds-refused"] + _a.Xen.Counters["interdomain-binds-refused"]);
    }

    [Fact]
    public void Close_LeavesThePeersEndUnboundAndAGonePeerUnbindsEverything()
    {
        uint portA = _a.AllocUnbound(DomainB);
        Assert.Equal(0, _b.BindInterdomain(DomainA, portA, out uint portB));
        _b.Close(portB);
        Assert.Equal((1u, (uint)DomainB, 0u), _a.Status(portA));

        // B binds again; then B dies: A's port goes back to unbound and A keeps working.
        Assert.Equal(0, _b.BindInterdomain(DomainA, portA, out portB));
        Assert.Equal(2u, _a.Status(portA).State);
        _linkOfA.Gone.Add(DomainB);
        Assert.Equal(1, _a.Xen.PeerGone(DomainB));
        Assert.Equal((1u, (uint)DomainB, 0u), _a.Status(portA));
        Assert.Equal(0, _a.Send(portA));   // a send on an unbound port goes nowhere, as in Xen

        // A stale send from the old binding is dropped: the port is no longer bound to it.
        _a.Xen.DeliverInterdomain(DomainB, portA, (int)portB);
        Assert.False(_a.IsPending(portA));
        Assert.Equal(1, _a.Xen.Counters["interdomain-sends-dropped"]);
    }

    [Fact]
    public void GrantCopy_ReadsAndWritesOnlyWhatThePeerGranted()
    {
        _a.MapGrantFrame();
        _a.Memory.Write(ReadOnlyPage + 100, "question"u8);
        _a.Grant(5, DomainB, ReadOnlyPage, readOnly: true);
        _a.Grant(6, DomainB, WritablePage, readOnly: false);
        _a.Grant(7, 3, WritablePage, readOnly: false);   // granted to another domain

        // B copies A's page (foreign source) into its own frame, then writes into A's writable grant.
        Assert.Equal(GrantStatus.Okay, _b.Copy(Gref(DomainA, 5, 100), Frame(LocalPage, 0), 8));
        Assert.Equal("question", System.Text.Encoding.ASCII.GetString(_b.Memory.GetSpan(LocalPage, 8)));
        _b.Memory.Write(LocalPage + 200, "answer"u8);
        Assert.Equal(GrantStatus.Okay, _b.Copy(Frame(LocalPage, 200), Gref(DomainA, 6, 16), 6));
        Assert.Equal("answer", System.Text.Encoding.ASCII.GetString(_a.Memory.GetSpan(WritablePage + 16, 6)));
        Assert.Equal(0, _a.Memory.Read<ushort>((GrantFrameGfn << 12) + (6 * 8)) & (int)(GrantTable.Reading | GrantTable.Writing));

        // Every bad case: Xen's status, and nothing written.
        Assert.Equal(GrantStatus.GeneralError, _b.Copy(Frame(LocalPage, 300), Gref(DomainA, 5, 0), 4));     // a read-only grant for a write
        Assert.Equal(GrantStatus.GeneralError, _b.Copy(Gref(DomainA, 7, 0), Frame(LocalPage, 0), 4));      // granted to domain 3
        Assert.Equal(GrantStatus.GeneralError, _b.Copy(Gref(DomainA, 8, 0), Frame(LocalPage, 0), 4));      // never granted
        Assert.Equal(GrantStatus.BadGntref, _b.Copy(Gref(DomainA, 600, 0), Frame(LocalPage, 0), 4));        // beyond A's table (one frame)
        Assert.Equal(GrantStatus.BadCopyArg, _b.Copy(Gref(DomainA, 5, 4000), Frame(LocalPage, 0), 200));   // past the page
        Assert.Equal(GrantStatus.PermissionDenied, _b.Copy((WritablePage >> 12, DomainA, 0, false), Frame(LocalPage, 0), 4));   // A's frame by number
        Assert.Equal(GrantStatus.BadDomain, _b.Copy(Gref(9, 5, 0), Frame(LocalPage, 0), 4));                // nobody runs domain 9
        Assert.Equal(GrantStatus.BadPage, _b.Copy(Gref(DomainA, 5, 0), Frame(0xFFFF_0000, 0), 4));          // not B's RAM
        Assert.Equal("answer", System.Text.Encoding.ASCII.GetString(_a.Memory.GetSpan(WritablePage + 16, 6)));
        Assert.Equal(0u, _a.Memory.Read<uint>(ReadOnlyPage));

        // The peer gone: bad_domain, B keeps running.
        _linkOfB.Gone.Add(DomainA);
        Assert.Equal(GrantStatus.BadDomain, _b.Copy(Gref(DomainA, 5, 100), Frame(LocalPage, 0), 8));
        Assert.Equal(3, _b.Xen.Counters["grant-copy-status-1"]);
        Assert.Equal(2, _b.Xen.Counters["grant-copy-status-2"]);
        Assert.Equal(11, _b.Xen.Counters["grant-copy-ops"]);
    }

    [Fact]
    public void GrantCopy_BatchesAndRefusesWhatItCannotRead()
    {
        _a.MapGrantFrame();
        _a.Grant(5, DomainB, ReadOnlyPage, readOnly: true);
        _a.Memory.Write(ReadOnlyPage, "abcdefgh"u8);
        _b.WriteCopy(0, Gref(DomainA, 5, 0), Frame(LocalPage, 0), 4);
        _b.WriteCopy(1, Gref(DomainA, 5, 4), Frame(LocalPage, 8), 4);
        _b.WriteCopy(2, Gref(DomainA, 99, 0), Frame(LocalPage, 16), 4);
        Assert.Equal(0, _b.Cpu.Call(_b.Xen, HypercallOp.GrantTableOp, 5, Scratch, 3));
        Assert.Equal([GrantStatus.Okay, GrantStatus.Okay, GrantStatus.GeneralError], Enumerable.Range(0, 3).Select(i => _b.Memory.Read<short>(Scratch + ((ulong)i * 40) + 36)));
        Assert.Equal("abcd", System.Text.Encoding.ASCII.GetString(_b.Memory.GetSpan(LocalPage, 4)));
        Assert.Equal("efgh", System.Text.Encoding.ASCII.GetString(_b.Memory.GetSpan(LocalPage + 8, 4)));

        Assert.Equal(-22, _b.Cpu.Call(_b.Xen, HypercallOp.GrantTableOp, 5, Scratch, XenDomain.MaxCopyBatch + 1));
        Assert.Equal(-14, _b.Cpu.Call(_b.Xen, HypercallOp.GrantTableOp, 5, 0xFFFF_FFFF_0000, 1));
    }

    private static (ulong Ref, ushort Domain, ushort Offset, bool Gref) Gref(ushort domain, uint reference, ushort offset) => (reference, domain, offset, true);

    private static (ulong Ref, ushort Domain, ushort Offset, bool Gref) Frame(ulong page, ushort offset) => (page >> 12, XenDomain.DomidSelf, offset, false);

    /// <summary>One domain: its memory, a vCPU, shared_info and the callback vector set.</summary>
    private sealed class Side : IDisposable
    {
        private readonly FakeHypervisorHost _host = new();

        public Side(ushort domain)
        {
            Memory = GuestMemory.CreateRam(16 << 20);
            Xen = new XenDomain(Memory, new XenDomainOptions { DomainId = domain, VcpuCount = 1 });
            Xen.Connect(_host);
            Cpu = new FakeHypercallContext(Memory);

            Memory.Write<ushort>(Scratch, XenDomain.DomidSelf);
            Memory.Write<uint>(Scratch + 4, 0);   // XENMAPSPACE_shared_info
            Memory.Write<ulong>(Scratch + 8, 0);
            Memory.Write<ulong>(Scratch + 16, SharedInfoGfn);
            Assert.Equal(0, Cpu.Call(Xen, HypercallOp.MemoryOp, 7, Scratch));
            Memory.Write<ushort>(Scratch, XenDomain.DomidSelf);
            Memory.Write<uint>(Scratch + 4, HvmParam.CallbackIrq);
            Memory.Write<ulong>(Scratch + 8, CallbackVector | (2UL << 56));
            Assert.Equal(0, Cpu.Call(Xen, HypercallOp.HvmOp, 0, Scratch));
        }

        public GuestMemory Memory { get; }

        public XenDomain Xen { get; }

        public FakeHypercallContext Cpu { get; }

        public void MapGrantFrame()
        {
            Memory.Write<ushort>(Scratch, XenDomain.DomidSelf);
            Memory.Write<uint>(Scratch + 4, 1);   // XENMAPSPACE_grant_table
            Memory.Write<ulong>(Scratch + 8, 0);
            Memory.Write<ulong>(Scratch + 16, GrantFrameGfn);
            Assert.Equal(0, Cpu.Call(Xen, HypercallOp.MemoryOp, 7, Scratch));
        }

        public void Grant(uint reference, ushort grantee, ulong page, bool readOnly)
        {
            ulong entry = (GrantFrameGfn << 12) + (reference * 8);
            Memory.Write<uint>(entry + 4, (uint)(page >> 12));
            Memory.Write<ushort>(entry + 2, grantee);
            Memory.Write<ushort>(entry, (ushort)(GrantTable.PermitAccess | (readOnly ? GrantTable.ReadOnly : 0)));
        }

        public uint AllocUnbound(ushort remote)
        {
            Memory.Write<ushort>(Scratch, XenDomain.DomidSelf);
            Memory.Write<ushort>(Scratch + 2, remote);
            Assert.Equal(0, Cpu.Call(Xen, HypercallOp.EventChannelOp, 6, Scratch));
            return Memory.Read<uint>(Scratch + 4);
        }

        public long BindInterdomain(ushort remote, uint remotePort, out uint port)
        {
            Memory.Write<ushort>(Scratch, remote);
            Memory.Write<uint>(Scratch + 4, remotePort);
            long result = Cpu.Call(Xen, HypercallOp.EventChannelOp, 0, Scratch);
            port = Memory.Read<uint>(Scratch + 8);
            return result;
        }

        public long Send(uint port)
        {
            Memory.Write(Scratch, port);
            return Cpu.Call(Xen, HypercallOp.EventChannelOp, 4, Scratch);
        }

        public void Close(uint port)
        {
            Memory.Write(Scratch, port);
            Assert.Equal(0, Cpu.Call(Xen, HypercallOp.EventChannelOp, 3, Scratch));
        }

        public (uint State, uint Remote, uint RemotePort) Status(uint port)
        {
            Memory.Write<ushort>(Scratch, XenDomain.DomidSelf);
            Memory.Write<uint>(Scratch + 4, port);
            Assert.Equal(0, Cpu.Call(Xen, HypercallOp.EventChannelOp, 5, Scratch));
            uint state = Memory.Read<uint>(Scratch + 8);
            return (state, state is 1 or 2 ? Memory.Read<ushort>(Scratch + 16) : 0u, state == 2 ? Memory.Read<uint>(Scratch + 20) : 0u);
        }

        public bool IsPending(uint port) => (Memory.Read<ulong>((SharedInfoGfn << 12) + 2048 + ((port / 64) * 8)) & (1UL << (int)(port % 64))) != 0;

        public void WriteCopy(int index, (ulong Ref, ushort Domain, ushort Offset, bool Gref) source, (ulong Ref, ushort Domain, ushort Offset, bool Gref) dest, ushort length)
        {
            ulong op = Scratch + ((ulong)index * 40);
            Memory.Write(op, source.Ref);
            Memory.Write(op + 8, source.Domain);
            Memory.Write(op + 10, source.Offset);
            Memory.Write(op + 16, dest.Ref);
            Memory.Write(op + 24, dest.Domain);
            Memory.Write(op + 26, dest.Offset);
            Memory.Write(op + 32, length);
            Memory.Write(op + 34, (ushort)((source.Gref ? 1 : 0) | (dest.Gref ? 2 : 0)));
            Memory.Write<short>(op + 36, 99);
        }

        public short Copy((ulong Ref, ushort Domain, ushort Offset, bool Gref) source, (ulong Ref, ushort Domain, ushort Offset, bool Gref) dest, ushort length)
        {
            WriteCopy(0, source, dest, length);
            Assert.Equal(0, Cpu.Call(Xen, HypercallOp.GrantTableOp, 5, Scratch, 1));
            return Memory.Read<short>(Scratch + 36);
        }

        public void Dispose()
        {
            Xen.Dispose();
            Memory.Dispose();
        }
    }
}
