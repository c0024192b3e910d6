using SharpVisor.Emulator.Mmu;
using SharpVisor.Memory;
using static SharpVisor.Emulator.Tests.Mmu.PageTables;

namespace SharpVisor.Emulator.Tests.Mmu;

/// <summary>The machine-wide write tracking: TLB write tags, reports between vCPUs, racing stores.</summary>
public sealed class WriteTrackerTests : IDisposable
{
    private const ulong Frame = 0x8000;
    private const nint Host = 0x7000_0000;

    private readonly GuestMemory _memory = GuestMemory.CreateRam(4 << 20);

    public void Dispose() => _memory.Dispose();

    [Fact]
    public void TrackingAFrameRevokesEveryVcpusWriteTagsForIt()
    {
        var tracker = new WriteTracker(_memory);
        WriteTrackerMember a = tracker.Join(new SoftTlb(64));
        WriteTrackerMember b = tracker.Join(new SoftTlb(64));
        b.Tlb.Fill(0x1000, TlbContext.Supervisor, Host, Frame, true, true, true, false, 4096);
        b.Tlb.Fill(0x2000, TlbContext.Supervisor, Host + 0x1000, Frame + 0x1000, true, true, true, false, 4096);

        a.Track(Frame, TrackReason.Code);

        Assert.True(tracker.IsTracked(Frame + 0x123));
        Assert.False(b.Tlb.TryGetHostAddress(0x1000, PageAccess.Write, out _));
        Assert.True(b.Tlb.TryGetHostAddress(0x1000, PageAccess.Read, out _));
        Assert.True(b.Tlb.TryGetHostAddress(0x2000, PageAccess.Write, out _));
        Assert.True(a.Tlb.Shared && b.Tlb.Shared);
    }

    [Theory]
    [MemberData(nameof(MmuHarness.Modes), MemberType = typeof(MmuHarness))]
    public void AnMmuGivesNoWriteTagForAFrameAnotherVcpuTracksUntilItIsUntracked(MmuMode mode)
    {
        var tables = new PageTables(_memory, PagingMode.FourLevel);
        tables.Map(0x40_0000, Frame, P | RW | D);
        using var secondLevel = SecondLevelTable.Build(_memory);
        var tracker = new WriteTracker(_memory);
        IMmu a = MmuFactory.Create(mode, _memory, secondLevel, null, tracker);
        IMmu b = MmuFactory.Create(mode, _memory, secondLevel, null, tracker);
        Assert.True(b.LoadControlRegisters(0x8000_0011, tables.Root, 0x20, 0x500));

        a.Tracking.Track(Frame, TrackReason.Code);
        Translation t = b.Translate(0x40_0000, PageAccess.Write);
        Assert.True(t.IsRam && t.WriteTracked);
        Assert.False(b.Tlb.TryGetHostAddress(0x40_0000, PageAccess.Write, out _));

        a.Tracking.Untrack(Frame, TrackReason.Code);
        b.FlushAll();
        t = b.Translate(0x40_0000, PageAccess.Write);
        Assert.True(t.IsRam && !t.WriteTracked);
        Assert.True(b.Tlb.TryGetHostAddress(0x40_0000, PageAccess.Write, out _));
    }

    [Fact]
    public void AStoreIsReportedToTheOtherVcpusTrackingTheFrameOnly()
    {
        var tracker = new WriteTracker(_memory);
        WriteTrackerMember a = tracker.Join(new SoftTlb(64));
        WriteTrackerMember b = tracker.Join(new SoftTlb(64));
        WriteTrackerMember c = tracker.Join(new SoftTlb(64));
        a.Track(Frame, TrackReason.PageTable);
        b.Track(Frame, TrackReason.Code);

        b.Publish(Frame + 0x10, 8);

        Assert.True(a.HasWork);
        Assert.False(b.HasWork);
        Assert.False(c.HasWork);
        Assert.False(a.BeginService());
        Assert.True(a.TryTakeWrite(out ulong address, out ulong length));
        Assert.Equal((Frame + 0x10, 8UL), (address, length));
        Assert.False(a.TryTakeWrite(out _, out _));

        tracker.OnExternalWrite(Frame + 0xFF8, 0x10); // DMA across the frame's end: both trackers hear of it
        Assert.True(a.HasWork && b.HasWork);
        Assert.False(c.HasWork);
    }

    [Fact]
    public void ReportsBeyondTheQueueLimitBecomeOneOverflow()
    {
        var tracker = new WriteTracker(_memory);
        WriteTrackerMember a = tracker.Join(new SoftTlb(64));
        WriteTrackerMember b = tracker.Join(new SoftTlb(64));
        a.Track(Frame, TrackReason.Code);
        for (int i = 0; i <= WriteTrackerMember.MaxQueuedWrites; i++)
        {
            b.Publish(Frame, 1);
        }

        Assert.True(a.BeginService());
        Assert.False(a.TryTakeWrite(out _, out _));
        b.Publish(Frame, 1);
        Assert.False(a.BeginService());
        Assert.True(a.TryTakeWrite(out _, out _));
    }

    [Fact]
    public void APageTableTrackedWhileAnotherVcpuExecutesSettlesWhenThatVcpuPassesABoundary()
    {
        var tracker = new WriteTracker(_memory);
        WriteTrackerMember a = tracker.Join(new SoftTlb(64));
        WriteTrackerMember b = tracker.Join(new SoftTlb(64));
        b.EnterGuest();

        a.Track(Frame, TrackReason.PageTable);
        Assert.True(a.HasWork);
        a.BeginService();
        Assert.False(a.TryTakeSettled(out _, out _));
        Assert.True(a.HasWork); // still waiting

        b.PassBoundary();
        a.BeginService();
        Assert.True(a.TryTakeSettled(out ulong frame, out TrackReason reason));
        Assert.Equal((Frame, TrackReason.PageTable), (frame, reason));
        Assert.False(a.HasWork);

        b.LeaveGuest();
        a.Track(Frame + 0x1000, TrackReason.PageTable); // b not executing: nothing can race
        Assert.False(a.HasWork);
    }

    [Fact]
    public void ACodeFrameTrackedWhileAnotherVcpuExecutesIsComparedWithMemoryUntilThatVcpuMovesOn()
    {
        var tracker = new WriteTracker(_memory);
        WriteTrackerMember a = tracker.Join(new SoftTlb(64));
        WriteTrackerMember b = tracker.Join(new SoftTlb(64));
        b.EnterGuest();

        a.Track(Frame, TrackReason.Code);
        a.BeginService();
        Assert.False(a.TryTakeSettled(out _, out _)); // unchanged so far, but b may be mid-store
        Assert.True(a.HasWork);

        _memory.Write(Frame + 0x40, (byte)0x90); // b's store lands, unreported
        a.BeginService();
        Assert.True(a.TryTakeSettled(out ulong frame, out TrackReason reason));
        Assert.Equal((Frame, TrackReason.Code), (frame, reason));
        Assert.False(a.HasWork);

        a.Track(Frame + 0x1000, TrackReason.Code);
        b.PassBoundary(); // b moved on without storing there: nothing to do
        a.BeginService();
        Assert.False(a.TryTakeSettled(out _, out _));
        Assert.False(a.HasWork);
        b.LeaveGuest();
    }
}
