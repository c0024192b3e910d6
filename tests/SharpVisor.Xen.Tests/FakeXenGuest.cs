using SharpVisor.Memory;

namespace SharpVisor.Xen.Tests;

/// <summary>
/// A guest domain for back-end tests: 4 MiB of RAM, shared_info and one grant frame mapped, the
/// XenStore seeded as the toolstack does, and the hypercalls a front end makes (grants, ports).
/// </summary>
internal sealed class FakeXenGuest : IDisposable
{
    public const ulong SharedInfo = 0x10000;
    public const ulong GrantFrame = 0x11000;
    public const ulong Scratch = 0x20000;

    private readonly FakeHypercallContext _cpu;

    public FakeXenGuest()
    {
        Memory = GuestMemory.CreateRam(4 << 20);
        Xen = new XenDomain(Memory, new XenDomainOptions());
        Xen.Connect(new FakeHypervisorHost());
        _cpu = new FakeHypercallContext(Memory);
        Memory.Write<ushort>(Scratch, XenDomain.DomidSelf);
        Memory.Write<uint>(Scratch + 4, 0);                    // XENMAPSPACE_shared_info
        Memory.Write<ulong>(Scratch + 16, SharedInfo >> 12);
        Check(_cpu.Call(Xen, HypercallOp.MemoryOp, 7, Scratch));
        Memory.Write<uint>(Scratch + 4, 1);                    // XENMAPSPACE_grant_table, frame 0
        Memory.Write<ulong>(Scratch + 8, 0);
        Memory.Write<ulong>(Scratch + 16, GrantFrame >> 12);
        Check(_cpu.Call(Xen, HypercallOp.MemoryOp, 7, Scratch));
        Store = new XenStore();
        XenStoreLayout.SeedDomain(Store, Xen.DomainId, "test", 4096, 1);
        Grants = new GrantTable(Xen);
    }

    public GuestMemory Memory { get; }

    public XenDomain Xen { get; }

    public XenStore Store { get; }

    public GrantTable Grants { get; }

    /// <summary>Writes grant entry <paramref name="reference"/>: permit access for <paramref name="grantee"/> to <paramref name="frame"/>.</summary>
    public void Grant(uint reference, ulong frame, bool readOnly, ushort grantee = 0)
    {
        ulong entry = GrantFrame + (reference * 8);
        Memory.Write<uint>(entry + 4, (uint)frame);
        Memory.Write<uint>(entry, (uint)(grantee << 16) | GrantTable.PermitAccess | (readOnly ? GrantTable.ReadOnly : 0u));
    }

    /// <summary>EVTCHNOP_alloc_unbound for Dom0: the port a front end publishes.</summary>
    public int AllocateUnboundForDom0() => AllocateUnboundFor(0);

    /// <summary>EVTCHNOP_alloc_unbound for <paramref name="remote"/> (a driver domain's back end).</summary>
    public int AllocateUnboundFor(ushort remote)
    {
        Memory.Write<ushort>(Scratch, XenDomain.DomidSelf);
        Memory.Write<ushort>(Scratch + 2, remote);
        Check(_cpu.Call(Xen, HypercallOp.EventChannelOp, 6, Scratch));
        return (int)Memory.Read<uint>(Scratch + 4);
    }

    public void Close(int port)
    {
        Memory.Write<uint>(Scratch, (uint)port);
        Check(_cpu.Call(Xen, HypercallOp.EventChannelOp, 3, Scratch));
    }

    public void Send(int port)
    {
        Memory.Write<uint>(Scratch, (uint)port);
        Check(_cpu.Call(Xen, HypercallOp.EventChannelOp, 4, Scratch));
    }

    public bool Pending(int port) => (Memory.Read<ulong>(SharedInfo + 2048 + ((ulong)(port / 64) * 8)) & (1UL << (port % 64))) != 0;

    public void Dispose()
    {
        Xen.Dispose();
        Memory.Dispose();
    }

    private static void Check(long result)
    {
        if (result != 0)
        {
            throw new InvalidOperationException($"hypercall failed: {result}");
        }
    }
}
