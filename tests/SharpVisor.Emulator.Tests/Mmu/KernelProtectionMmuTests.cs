using SharpVisor.Emulator.Mmu;
using SharpVisor.Machine.Protection;
using static SharpVisor.Emulator.Tests.Mmu.PageTables;

namespace SharpVisor.Emulator.Tests.Mmu;

/// <summary>
/// Kernel protection in both MMU modes (docs/security.md): once the map is locked, stores to
/// protected frames fault with the #PF a read-only mapping gives, whatever the guest's own page
/// tables say, supervisor fetches outside the executable ranges fault, and log mode reports
/// without blocking. The TLB never keeps a write tag for a protected frame.
/// </summary>
public class KernelProtectionMmuTests
{
    private const ulong Text = 0xFFFF_FFFF_8100_0000;
    private const ulong TextFrame = 0x40_0000;
    private const ulong Data = 0xFFFF_FFFF_8200_0000;
    private const ulong DataFrame = 0x50_0000;
    private const ulong Alias = 0xFFFF_8880_0040_0000; // a writable direct-map alias of the text frame

    [Theory]
    [MemberData(nameof(MmuHarness.Modes), MemberType = typeof(MmuHarness))]
    public void StoreToAProtectedFrameThroughAWritableAliasFaultsAfterLock(MmuMode mode)
    {
        using var h = Setup(mode, enforce: true, out RecordingMonitor monitor, out ProtectionMap map);

        // Before the lock: the alias writes, and the TLB keeps the write tag.
        MmuAssert.Ram(h.Store(Alias, 0x90), TextFrame);
        Lock(map);
        h.Mmu.FlushAll(); // what the vCPU does when the map's generation changes

        Translation t = h.Store(Alias, 0xCC);
        Assert.True(t.IsPageFault);
        Assert.Equal(PageFaultErrorCode.Present | PageFaultErrorCode.ReservedBit | PageFaultErrorCode.Write, t.Fault.ErrorCode);
        Assert.Equal(Alias, t.Fault.Address);
        Assert.Equal(ProtectionViolationKind.KernelWrite, t.Violation);
        Assert.Equal(0x90UL, h.Memory.Read<ulong>(TextFrame));

        // Reads still work, and a read fill grants no write tag (the next store comes back here).
        MmuAssert.Ram(h.Translate(Alias), TextFrame);
        Assert.True(h.Store(Alias, 0xCC).IsPageFault);

        // Other frames are untouched by the protection.
        MmuAssert.Ram(h.Store(Data, 1), DataFrame);
        Assert.Empty(monitor.Violations); // the CPU reports (with RIP), not the MMU
    }

    [Theory]
    [MemberData(nameof(MmuHarness.Modes), MemberType = typeof(MmuHarness))]
    public void StoreWithCr0WpClearStillFaults(MmuMode mode)
    {
        using var h = Setup(mode, enforce: true, out _, out ProtectionMap map, wp: false);
        Lock(map);
        Translation t = h.Store(Text, 0xCC); // the guest maps text read-only, but WP=0 would let a supervisor store through
        Assert.True(t.IsPageFault);
        Assert.Equal(ProtectionViolationKind.KernelWrite, t.Violation);
    }

    [Theory]
    [MemberData(nameof(MmuHarness.Modes), MemberType = typeof(MmuHarness))]
    public void SupervisorFetchOutsideKernelTextFaultsUserFetchDoesNot(MmuMode mode)
    {
        using var h = Setup(mode, enforce: true, out _, out ProtectionMap map);
        h.Tables.Map(0x40_0000, 0x70_0000, P | RW | US); // a user page, executable
        Lock(map);

        MmuAssert.Ram(h.Translate(Text + 0x10, PageAccess.Execute), TextFrame + 0x10);
        Translation data = h.Translate(Data, PageAccess.Execute);
        Assert.True(data.IsPageFault);
        Assert.Equal(PageFaultErrorCode.Present | PageFaultErrorCode.ReservedBit | PageFaultErrorCode.InstructionFetch, data.Fault.ErrorCode);
        Assert.Equal(ProtectionViolationKind.KernelExecute, data.Violation);
        MmuAssert.Ram(h.Translate(0x40_0000, PageAccess.Execute | PageAccess.User), 0x70_0000);
        MmuAssert.Ram(h.Translate(Data), DataFrame); // reading it is fine
    }

    [Theory]
    [MemberData(nameof(MmuHarness.Modes), MemberType = typeof(MmuHarness))]
    public void LogModeLetsTheStoreThroughButReportsEveryOne(MmuMode mode)
    {
        using var h = Setup(mode, enforce: false, out _, out ProtectionMap map);
        Lock(map);
        Translation first = h.Store(Alias, 0xCC);
        Assert.True(first.IsRam);
        Assert.Equal(ProtectionViolationKind.KernelWrite, first.Violation);
        Assert.Equal(0xCCUL, h.Memory.Read<ulong>(TextFrame));
        Assert.Equal(ProtectionViolationKind.KernelWrite, h.Store(Alias, 0xCD).Violation); // no write tag: reported again
    }

    [Fact]
    public void DeviceWritesIntoProtectedFramesAreRefusedAndReported()
    {
        var monitor = new RecordingMonitor();
        var map = new ProtectionMap(monitor, enforce: true);
        Assert.True(map.AllowsDeviceWrite(TextFrame, 4096)); // unlocked
        Lock(map);
        Assert.False(map.AllowsDeviceWrite(TextFrame + 0xF00, 0x200));
        Assert.False(map.AllowsDeviceWrite(TextFrame - 0x100, 0x200)); // straddles into it
        Assert.True(map.AllowsDeviceWrite(DataFrame, 4096));
        Assert.Equal(2, monitor.Violations.Count);
        Assert.All(monitor.Violations, v => Assert.Equal(ProtectionViolationKind.DeviceWrite, v.Kind));
    }

    private static MmuHarness Setup(MmuMode mode, bool enforce, out RecordingMonitor monitor, out ProtectionMap map, bool wp = true)
    {
        var h = new MmuHarness(mode);
        h.Tables.Map(Text, TextFrame, P | G);                     // kernel text: read-only, executable
        h.Tables.Map(Alias, TextFrame, P | RW | NX);              // the same frame, writable
        h.Tables.Map(Data, DataFrame, P | RW);                    // executable as far as the guest says
        monitor = new RecordingMonitor();
        map = new ProtectionMap(monitor, enforce);
        h.Mmu.Protection = map;
        h.EnablePaging(wp: wp);
        return h;
    }

    private static void Lock(ProtectionMap map) => Assert.True(map.Lock(
        [new ProtectedRange(TextFrame, TextFrame + 4096)],
        [new ProtectedRange(Text, Text + 4096)],
        RegisterPins.None));

    private sealed class RecordingMonitor : IProtectionMonitor
    {
        public List<ProtectionViolation> Violations { get; } = new();

        public void OnUserModeEntered(IProtectionLockContext context)
        {
        }

        public void OnViolation(in ProtectionViolation violation) => Violations.Add(violation);
    }
}
