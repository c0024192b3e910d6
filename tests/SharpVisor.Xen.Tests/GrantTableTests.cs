using SharpVisor.Memory;

namespace SharpVisor.Xen.Tests;

public sealed class GrantTableTests : IDisposable
{
    private const ulong Frame0 = 0x60000;
    private const ulong Scratch = 0x20000;

    private readonly GuestMemory _memory = GuestMemory.CreateRam(4 << 20);
    private readonly XenDomain _xen;
    private readonly GrantTable _grants;

    public GrantTableTests()
    {
        _xen = new XenDomain(_memory, new XenDomainOptions());
        _xen.Connect(new FakeHypervisorHost());
        var cpu = new FakeHypercallContext(_memory);
        _memory.Write<ushort>(Scratch, XenDomain.DomidSelf);
        _memory.Write<uint>(Scratch + 4, 1);   // XENMAPSPACE_grant_table, frame 0
        _memory.Write<ulong>(Scratch + 16, Frame0 >> 12);
        Assert.Equal(0, cpu.Call(_xen, HypercallOp.MemoryOp, 7, Scratch));
        _grants = new GrantTable(_xen);
    }

    public void Dispose()
    {
        _xen.Dispose();
        _memory.Dispose();
    }

    [Fact]
    public void CopiesGoOnlyWhereTheGuestGranted()
    {
        Grant(5, domid: 0, frame: 0x70, readOnly: false);
        Grant(6, domid: 0, frame: 0x71, readOnly: true);
        Grant(7, domid: 3, frame: 0x72, readOnly: false);
        _memory.Write(0x71000 + 100, "granted"u8);

        var buffer = new byte[7];
        _grants.CopyFrom(0, 6, 100, buffer);
        Assert.Equal("granted"u8.ToArray(), buffer);
        _grants.CopyTo(0, 5, 4000, "data"u8);
        Assert.Equal("data"u8.ToArray(), _memory.GetSpan(0x70000 + 4000, 4).ToArray());

        Assert.Equal("EACCES", Assert.Throws<GrantTableException>(() => _grants.CopyTo(0, 6, 0, "x"u8)).Error);      // read-only
        Assert.Equal("EACCES", Assert.Throws<GrantTableException>(() => _grants.CopyFrom(0, 7, 0, buffer)).Error);    // another grantee
        Assert.Equal("EACCES", Assert.Throws<GrantTableException>(() => _grants.CopyFrom(0, 8, 0, buffer)).Error);    // never granted
        Assert.Equal("EINVAL", Assert.Throws<GrantTableException>(() => _grants.CopyTo(0, 5, 4094, "data"u8)).Error);  // leaves the page
        Assert.Equal("EINVAL", Assert.Throws<GrantTableException>(() => _grants.CopyFrom(0, 512, 0, buffer)).Error);  // no frame 1
        Grant(9, domid: 0, frame: 0xFFFFF, readOnly: false);
        Assert.Equal("EINVAL", Assert.Throws<GrantTableException>(() => _grants.CopyFrom(0, 9, 0, buffer)).Error);    // not RAM

        // The names `top` and the daemon's metrics show (the VMM prefixes them with xen-).
        Assert.Equal(2, _grants.Counters["grant-copies"]);
        Assert.Equal(11, _grants.Counters["grant-copy-bytes"]);
        Assert.Equal(6, _grants.Counters["grant-refusals"]);
    }

    [Fact]
    public void AMappedGrantIsMarkedInUseUntilUnmapped()
    {
        Grant(1, domid: 0, frame: 0x70, readOnly: false);
        Assert.Equal(0x70000UL, _grants.Map(0, 1, write: true));
        Assert.Equal(GrantTable.PermitAccess | GrantTable.Reading | GrantTable.Writing, _memory.Read<ushort>(Frame0 + 8));
        _grants.Unmap(1, write: true);
        Assert.Equal(GrantTable.PermitAccess, _memory.Read<ushort>(Frame0 + 8));
        Assert.Equal(1, _grants.Counters["grant-maps"]);                 // a name `top` shows
    }

    private void Grant(uint reference, ushort domid, uint frame, bool readOnly)
    {
        ulong entry = Frame0 + (reference * 8);
        _memory.Write(entry, (ushort)(GrantTable.PermitAccess | (readOnly ? GrantTable.ReadOnly : 0)));
        _memory.Write(entry + 2, domid);
        _memory.Write(entry + 4, frame);
    }
}
