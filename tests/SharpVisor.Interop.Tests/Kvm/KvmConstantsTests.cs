using SharpVisor.Interop.Kvm;

namespace SharpVisor.Interop.Tests.Kvm;

/// <summary>Capability numbers, exit reasons and flags against &lt;linux/kvm.h&gt; (values printed by a C program).</summary>
public class KvmConstantsTests
{
    [Theory]
    [InlineData(KvmCapability.Irqchip, 0)]
    [InlineData(KvmCapability.UserMemory, 3)]
    [InlineData(KvmCapability.SetTssAddr, 4)]
    [InlineData(KvmCapability.ExtCpuid, 7)]
    [InlineData(KvmCapability.NrVcpus, 9)]
    [InlineData(KvmCapability.MpState, 14)]
    [InlineData(KvmCapability.IrqRouting, 25)]
    [InlineData(KvmCapability.Irqfd, 32)]
    [InlineData(KvmCapability.Pit2, 33)]
    [InlineData(KvmCapability.Ioeventfd, 36)]
    [InlineData(KvmCapability.SetIdentityMapAddr, 37)]
    [InlineData(KvmCapability.MaxVcpus, 66)]
    [InlineData(KvmCapability.SignalMsi, 77)]
    [InlineData(KvmCapability.ReadonlyMem, 81)]
    [InlineData(KvmCapability.ImmediateExit, 136)]
    public void CapabilityNumbersMatchTheHeader(KvmCapability capability, int expected)
    {
        Assert.Equal(expected, (int)capability);
    }

    [Theory]
    [InlineData(KvmExitReason.Io, 2)]
    [InlineData(KvmExitReason.Hlt, 5)]
    [InlineData(KvmExitReason.Mmio, 6)]
    [InlineData(KvmExitReason.Shutdown, 8)]
    [InlineData(KvmExitReason.FailEntry, 9)]
    [InlineData(KvmExitReason.Intr, 10)]
    [InlineData(KvmExitReason.Nmi, 16)]
    [InlineData(KvmExitReason.InternalError, 17)]
    [InlineData(KvmExitReason.SystemEvent, 24)]
    [InlineData(KvmExitReason.IoapicEoi, 26)]
    [InlineData(KvmExitReason.X86Rdmsr, 29)]
    [InlineData(KvmExitReason.Notify, 37)]
    [InlineData(KvmExitReason.MemoryFault, 39)]
    public void ExitReasonsMatchTheHeader(KvmExitReason reason, uint expected)
    {
        Assert.Equal(expected, (uint)reason);
    }

    [Fact]
    public void FlagsMatchTheHeader()
    {
        Assert.Equal(1u, KvmUserspaceMemoryRegion.MemLogDirtyPages);
        Assert.Equal(2u, KvmUserspaceMemoryRegion.MemReadonly);
        Assert.Equal((1u, 2u, 4u), (KvmIoeventfd.FlagDatamatch, KvmIoeventfd.FlagPio, KvmIoeventfd.FlagDeassign));
        Assert.Equal((1u, 2u), (KvmIrqfd.FlagDeassign, KvmIrqfd.FlagResample));
        Assert.Equal(1u, KvmPitConfig.SpeakerDummy);
        Assert.Equal((0u, 1u, 2u, 3u, 4u), (KvmMpState.Runnable, KvmMpState.Uninitialized, KvmMpState.InitReceived, KvmMpState.Halted, KvmMpState.SipiReceived));
        Assert.Equal((1u, 2u, 3u, 4u), (KvmRunInternal.SuberrorEmulation, KvmRunInternal.SuberrorSimultaneousException, KvmRunInternal.SuberrorDeliveryEvent, KvmRunInternal.SuberrorUnexpectedExitReason));
        Assert.Equal((1u, 2u, 3u), ((uint)KvmSystemEventType.Shutdown, (uint)KvmSystemEventType.Reset, (uint)KvmSystemEventType.Crash));
        Assert.Equal((1u, 2u), (KvmIrqRoutingEntry.TypeIrqchip, KvmIrqRoutingEntry.TypeMsi));
    }
}
