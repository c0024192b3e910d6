using SharpVisor.Emulator.Mmu;

namespace SharpVisor.Emulator.Tests.Mmu;

// The CPU core has its own IMmu and TlbEntry in SharpVisor.Emulator; these tests mean the MMU's.
using IMmu = SharpVisor.Emulator.Mmu.IMmu;
using TlbEntry = SharpVisor.Emulator.Mmu.TlbEntry;

public class SoftTlbTests
{
    private static readonly nint Host = unchecked((nint)0x7F00_0000_0000);

    [Fact]
    public void FilledRightsAreThoseLookedUp()
    {
        var tlb = new SoftTlb(64);
        tlb.Fill(0x40_1234, TlbContext.User, Host, 0x80_0000, read: true, write: false, execute: true, global: false, 4096);

        Assert.True(tlb.TryGetHostAddress(0x40_1FFF, PageAccess.User, out nint host));
        Assert.Equal(Host + 0xFFF, host);
        Assert.True(tlb.TryGetHostAddress(0x40_1000, PageAccess.User | PageAccess.Execute, out _));
        Assert.False(tlb.TryGetHostAddress(0x40_1000, PageAccess.User | PageAccess.Write, out _));
        Assert.False(tlb.TryGetHostAddress(0x40_1000, PageAccess.Read, out _));                    // another context
        Assert.False(tlb.TryGetHostAddress(0x40_1000 + (64 << 12), PageAccess.User, out _));       // same slot, other page
        Assert.True(tlb.TryLookup(0x40_1010, PageAccess.User, out _, out ulong physical));
        Assert.Equal(0x80_0010UL, physical);
    }

    [Fact]
    public void ContextsFollowCplAcAndImplicitAccesses()
    {
        Assert.Equal(TlbContext.Supervisor, SoftTlb.ContextFor(PageAccess.Write));
        Assert.Equal(TlbContext.SupervisorAlignmentCheck, SoftTlb.ContextFor(PageAccess.AlignmentCheck));
        Assert.Equal(TlbContext.Supervisor, SoftTlb.ContextFor(PageAccess.Implicit | PageAccess.AlignmentCheck));
        Assert.Equal(TlbContext.User, SoftTlb.ContextFor(PageAccess.User | PageAccess.AlignmentCheck));
        Assert.Equal(TlbContext.Supervisor, SoftTlb.ContextFor(PageAccess.User | PageAccess.Implicit));
    }

    [Fact]
    public void NonGlobalFlushKeepsOnlyGlobalEntries()
    {
        var tlb = new SoftTlb(64);
        tlb.Fill(0x1000, TlbContext.Supervisor, Host, 0, true, true, true, global: true, 4096);
        tlb.Fill(0x2000, TlbContext.Supervisor, Host, 0, true, true, true, global: false, 4096);
        tlb.Flush(includeGlobal: false);

        // The global entry keeps its older stamp until its next use, which re-stamps it (TryLookup).
        Assert.False(tlb.TryGetHostAddress(0x1000, PageAccess.Write, out _));
        Assert.True(tlb.TryLookup(0x1000, PageAccess.Write, out nint host, out _));
        Assert.Equal(Host, host);
        Assert.True(tlb.TryGetHostAddress(0x1000, PageAccess.Read, out _));
        Assert.False(tlb.TryLookup(0x2000, PageAccess.Read, out _, out _));

        // Still held after many CR3 loads; a global flush drops it for good.
        for (int i = 0; i < 100; i++)
        {
            tlb.Flush(includeGlobal: false);
        }

        Assert.True(tlb.TryLookup(0x1000, PageAccess.Execute, out _, out _));
        tlb.Flush(includeGlobal: true);
        Assert.False(tlb.TryLookup(0x1000, PageAccess.Read, out _, out _));
    }

    [Fact]
    public void ARefillAsNonGlobalIsNotKeptAsGlobal()
    {
        var tlb = new SoftTlb(64);
        tlb.Fill(0x1000, TlbContext.Supervisor, Host, 0, true, true, true, global: true, 4096);
        tlb.FlushPage(0x1000);
        tlb.Fill(0x1000, TlbContext.Supervisor, Host, 0, true, true, true, global: false, 4096);
        tlb.Fill(0x1000, TlbContext.Supervisor, Host, 0, true, true, true, global: true, 4096);
        tlb.Fill(0x1000, TlbContext.Supervisor, Host, 0, true, true, true, global: false, 4096);
        tlb.Flush(includeGlobal: false);
        Assert.False(tlb.TryLookup(0x1000, PageAccess.Read, out _, out _));
    }

    [Fact]
    public void ARevokedWriteTagStaysRevokedWhenAGlobalEntryIsRevived()
    {
        var tlb = new SoftTlb(64) { Shared = true };
        tlb.Fill(0x1000, TlbContext.Supervisor, Host, 0x5000, true, true, true, global: true, 4096);
        tlb.Flush(includeGlobal: false);
        tlb.RevokeWrite(0x5000);
        Assert.True(tlb.TryLookup(0x1000, PageAccess.Read, out _, out _));
        Assert.False(tlb.TryLookup(0x1000, PageAccess.Write, out _, out _));
        tlb.FlushPage(0x1000);
        Assert.False(tlb.TryLookup(0x1000, PageAccess.Read, out _, out _));
    }

    [Fact]
    public void StampWraparoundNeverRevivesAnOldEntry()
    {
        var tlb = new SoftTlb(64);
        tlb.Fill(0x1000, TlbContext.Supervisor, Host, 0, true, true, true, global: false, 4096);
        ulong stamp = tlb.Stamp;
        int flushes = 0;
        do
        {
            tlb.Flush(includeGlobal: true);
            flushes++;
            Assert.False(tlb.TryGetHostAddress(0x1000, PageAccess.Read, out _));
        }
        while (tlb.Stamp != stamp);

        Assert.True(flushes > 4000);
        tlb.Fill(0x1000, TlbContext.Supervisor, Host + 0x1000, 0, true, true, true, global: false, 4096);
        Assert.True(tlb.TryGetHostAddress(0x1000, PageAccess.Read, out nint host));
        Assert.Equal(Host + 0x1000, host);
    }

    [Fact]
    public void RevokeWriteRemovesOnlyWriteAccessToThatPhysicalPage()
    {
        var tlb = new SoftTlb(64);
        tlb.Fill(0x1000, TlbContext.Supervisor, Host, 0x5000, true, true, true, false, 4096);
        tlb.Fill(0x1000, TlbContext.User, Host, 0x5000, true, true, true, false, 4096);
        tlb.Fill(0x2000, TlbContext.Supervisor, Host + 0x1000, 0x6000, true, true, true, false, 4096);
        tlb.Fill(0x3F000, TlbContext.Supervisor, Host, 0x5000, true, true, true, false, 4096); // an alias in the context's last slot
        tlb.RevokeWrite(0x5000);
        Assert.False(tlb.TryGetHostAddress(0x3F000, PageAccess.Write, out _));
        Assert.True(tlb.TryGetHostAddress(0x3F000, PageAccess.Read, out _));
        Assert.False(tlb.TryGetHostAddress(0x1000, PageAccess.Write, out _));
        Assert.False(tlb.TryGetHostAddress(0x1000, PageAccess.User | PageAccess.Write, out _));
        Assert.True(tlb.TryGetHostAddress(0x1000, PageAccess.Read, out _));
        Assert.True(tlb.TryGetHostAddress(0x2000, PageAccess.Write, out _));
    }

    [Fact]
    public void FlushPageOfALargePageDropsEveryPieceButNotItsNeighbours()
    {
        var tlb = new SoftTlb(1024);
        const ulong large = 0x4000_0000;
        for (ulong offset = 0; offset < (2 << 20); offset += 0x40000)
        {
            tlb.Fill(large + offset, TlbContext.Supervisor, Host + (nint)offset, offset, true, true, true, global: true, 2 << 20);
        }

        tlb.Fill(large + (2 << 20), TlbContext.Supervisor, Host, 0, true, true, true, global: true, 4096);
        tlb.FlushPage(large + 0x1F_F000);
        for (ulong offset = 0; offset < (2 << 20); offset += 0x40000)
        {
            Assert.False(tlb.TryGetHostAddress(large + offset, PageAccess.Read, out _));
        }

        Assert.True(tlb.TryGetHostAddress(large + (2 << 20), PageAccess.Read, out _));
    }

    [Fact]
    public void ManyLargePagesCannotGrowTheTlbWithoutBound()
    {
        var tlb = new SoftTlb(16);
        for (ulong i = 0; i < 1000; i++)
        {
            tlb.Fill(i << 21, TlbContext.Supervisor, Host, 0, true, true, true, global: true, 2 << 20);
            Assert.True(tlb.TryGetHostAddress(i << 21, PageAccess.Read, out _));
        }

        // Past the bound the TLB flushes itself (allowed: a TLB may always drop entries); INVLPG still finds the large page.
        tlb.FlushPage((999UL << 21) + 0x1000);
        Assert.False(tlb.TryGetHostAddress(999UL << 21, PageAccess.Read, out _));
    }

    [Fact]
    public void SlotCountMustBeAPowerOfTwo()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new SoftTlb(100));
        Assert.Throws<ArgumentOutOfRangeException>(() => new SoftTlb(8));
        Assert.Throws<ArgumentOutOfRangeException>(() => new PageWalker(new MmuOptions { PhysicalAddressBits = 52 }));
    }
}
