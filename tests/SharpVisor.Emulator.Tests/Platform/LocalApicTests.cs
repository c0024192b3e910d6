using SharpVisor.Emulator.Platform;

namespace SharpVisor.Emulator.Tests.Platform;

public class LocalApicTests
{
    private readonly ManualTimeProvider _clock = new();
    private readonly PlatformTimeBase _time;
    private readonly ApicBus _bus = new();
    private readonly PlatformLog _log = new();
    private readonly LocalApic _apic;

    public LocalApicTests()
    {
        _time = new PlatformTimeBase(_clock);
        _apic = new LocalApic(0, _bus, _time, _log);
    }

    [Fact]
    public void PowerOnStateMatchesKvm()
    {
        Assert.Equal(0xFEE0_0900UL, _apic.ApicBase);
        Assert.True(_apic.IsBootProcessor);
        Assert.Equal(0x0005_0014u, _apic.ReadRegister(ApicRegister.Version));
        Assert.Equal(0u, _apic.ReadRegister(ApicRegister.Id));
        Assert.Equal(0xFFu, _apic.ReadRegister(ApicRegister.SpuriousVector));
        Assert.Equal(0xFFFF_FFFFu, _apic.ReadRegister(ApicRegister.DestinationFormat));
        Assert.Equal(LocalApic.LvtMasked, _apic.ReadRegister(ApicRegister.LvtTimer));
        Assert.Equal(LocalApic.LvtMasked, _apic.ReadRegister(ApicRegister.LvtLint1));
        Assert.Equal(LocalApic.LvtMasked, _apic.ReadRegister(ApicRegister.LvtError));

        // The BSP starts in virtual-wire mode (LINT0 = ExtINT), so the 8259 reaches it before Linux programs the APIC.
        Assert.Equal(0x700u, _apic.ReadRegister(ApicRegister.LvtLint0));
        Assert.True(_apic.AcceptsPicInterrupts);
        Assert.False(_apic.IsWaitingForSipi);
        Assert.True(_apic.IsMmioAddress(0xFEE0_00B0));
        Assert.False(_apic.IsMmioAddress(0xFEE0_1000));
    }

    [Fact]
    public void ApplicationProcessorStartsWaitingForSipiWithItsOwnId()
    {
        var ap = new LocalApic(1, _bus, _time);
        Assert.True(ap.IsWaitingForSipi);
        Assert.Equal(0xFEE0_0800UL, ap.ApicBase);
        Assert.Equal(1u << 24, ap.ReadRegister(ApicRegister.Id));
        Assert.Equal(LocalApic.LvtMasked, ap.ReadRegister(ApicRegister.LvtLint0));
        Assert.False(ap.AcceptsPicInterrupts);
    }

    [Fact]
    public void HighestVectorIsDeliveredFirstAndBlocksItsPriorityClass()
    {
        _apic.SoftwareEnable();
        Assert.True(_apic.AcceptInterrupt(0x31, levelTriggered: false));
        Assert.True(_apic.AcceptInterrupt(0x45, levelTriggered: false));
        Assert.True(_apic.AcceptInterrupt(0x41, levelTriggered: false));
        Assert.True(_apic.IrrBit(0x45));

        Assert.Equal(0x45, _apic.TakeInterrupt());
        Assert.True(_apic.IsrBit(0x45));
        Assert.False(_apic.IrrBit(0x45));
        Assert.Equal(0x40u, _apic.ReadRegister(ApicRegister.ProcessorPriority));

        // 0x41 is in the same priority class as the in-service 0x45, 0x31 below it.
        _apic.AssertNoInterrupt();

        _apic.EndOfInterrupt();
        Assert.False(_apic.IsrBit(0x45));
        Assert.Equal(0x41, _apic.TakeInterrupt());
        _apic.EndOfInterrupt();
        Assert.Equal(0x31, _apic.TakeInterrupt());
        _apic.EndOfInterrupt();
        _apic.AssertNoInterrupt();
        Assert.False(_apic.HasPendingEvents);
    }

    [Fact]
    public void HigherPriorityClassNestsAndEoiClearsTheHighestInService()
    {
        _apic.SoftwareEnable();
        _apic.AcceptInterrupt(0x35, false);
        Assert.Equal(0x35, _apic.TakeInterrupt());
        _apic.AcceptInterrupt(0x61, false);
        Assert.Equal(0x61, _apic.TakeInterrupt());
        Assert.True(_apic.IsrBit(0x35) && _apic.IsrBit(0x61));

        _apic.EndOfInterrupt();
        Assert.False(_apic.IsrBit(0x61));
        Assert.True(_apic.IsrBit(0x35));
        Assert.Equal(0x30u, _apic.ReadRegister(ApicRegister.ProcessorPriority));
    }

    [Fact]
    public void TaskPriorityHoldsBackLowerClasses()
    {
        _apic.SoftwareEnable();
        _apic.WriteRegister(ApicRegister.TaskPriority, 0x50);
        _apic.AcceptInterrupt(0x45, false);
        _apic.AssertNoInterrupt();
        Assert.Equal(0x50u, _apic.ReadRegister(ApicRegister.ProcessorPriority));

        _apic.WriteRegister(ApicRegister.TaskPriority, 0x30);
        Assert.True(_apic.TryGetPendingInterrupt(out int vector));
        Assert.Equal(0x45, vector);
        Assert.Equal(0x45, _apic.AcknowledgeInterrupt(vector));
        Assert.True(_apic.IsrBit(0x45));
    }

    [Fact]
    public void AcknowledgingAVanishedRequestYieldsTheSpuriousVector()
    {
        _apic.SoftwareEnable();
        _apic.AcceptInterrupt(0x45, false);
        Assert.True(_apic.TryGetPendingInterrupt(out int vector));
        _apic.WriteRegister(ApicRegister.TaskPriority, 0xF0);
        Assert.Equal(0xFF, _apic.AcknowledgeInterrupt(vector));
        Assert.True(_apic.IrrBit(0x45));
    }

    [Fact]
    public void SoftwareDisabledApicDropsNewInterruptsAndMasksLvts()
    {
        Assert.False(_apic.AcceptInterrupt(0x40, false));
        Assert.False(_apic.IrrBit(0x40));

        _apic.WriteRegister(ApicRegister.LvtLint1, 0x400);
        Assert.Equal(0x400u | LocalApic.LvtMasked, _apic.ReadRegister(ApicRegister.LvtLint1));

        _apic.SoftwareEnable();
        _apic.WriteRegister(ApicRegister.LvtTimer, 0xEC);
        Assert.Equal(0xECu, _apic.ReadRegister(ApicRegister.LvtTimer));
        _apic.WriteRegister(ApicRegister.SpuriousVector, 0xFF);
        Assert.Equal(0xECu | LocalApic.LvtMasked, _apic.ReadRegister(ApicRegister.LvtTimer));
    }

    [Fact]
    public void IllegalVectorIsAnErrorLatchedByEsrWritesAndSignalledThroughLvtError()
    {
        _apic.SoftwareEnable();
        _apic.WriteRegister(ApicRegister.LvtError, 0xFE);
        Assert.False(_apic.AcceptInterrupt(5, false));

        // ESR shows errors only after a write latches them (Linux writes it twice, then reads).
        Assert.Equal(0u, _apic.ReadRegister(ApicRegister.ErrorStatus));
        _apic.WriteRegister(ApicRegister.ErrorStatus, 0);
        Assert.Equal(LocalApic.ErrorReceiveIllegalVector, _apic.ReadRegister(ApicRegister.ErrorStatus));
        _apic.WriteRegister(ApicRegister.ErrorStatus, 0);
        Assert.Equal(0u, _apic.ReadRegister(ApicRegister.ErrorStatus));
        Assert.Equal(0xFE, _apic.TakeInterrupt());

        _apic.SendIpi(0, 0x0000_4005);
        _apic.WriteRegister(ApicRegister.ErrorStatus, 0);
        Assert.Equal(LocalApic.ErrorSendIllegalVector, _apic.ReadRegister(ApicRegister.ErrorStatus));
    }

    [Fact]
    public void LevelTriggeredEoiIsBroadcastEdgeIsNot()
    {
        var eois = new List<int>();
        _bus.EoiListener = eois.Add;
        _apic.SoftwareEnable();
        _apic.AcceptInterrupt(0x50, levelTriggered: true);
        Assert.True(_apic.TmrBit(0x50));
        Assert.Equal(0x50, _apic.TakeInterrupt());
        _apic.EndOfInterrupt();
        Assert.Equal([0x50], eois);

        _apic.AcceptInterrupt(0x50, levelTriggered: false);
        Assert.False(_apic.TmrBit(0x50));
        Assert.Equal(0x50, _apic.TakeInterrupt());
        _apic.EndOfInterrupt();
        Assert.Single(eois);
    }

    [Fact]
    public void RegisterPageRejectsBadAccessesWithoutFaulting()
    {
        Span<byte> data = stackalloc byte[4];
        _apic.Read(0x32, data[..2]);
        Assert.Equal(0x05, data[0]);
        Assert.Equal(0x00, data[1]);

        _apic.Read(0x33, data);
        Assert.Equal(0u, BitConverter.ToUInt32(data));
        int warnings = _log.Count;
        _apic.Write(0x80, [0x20, 0x00]);
        Assert.Equal(0u, _apic.ReadRegister(ApicRegister.TaskPriority));
        _apic.Write(0x2000, [1, 2, 3, 4]);
        Assert.True(_log.Count > warnings);
    }

    [Fact]
    public void OneShotTimerFiresAtItsVirtualDeadline()
    {
        _apic.SoftwareEnable();
        _apic.WriteRegister(ApicRegister.LvtTimer, 0xEC);
        _apic.WriteRegister(ApicRegister.TimerDivideConfiguration, 0x3); // divide by 16
        _apic.WriteRegister(ApicRegister.TimerInitialCount, 1000);
        Assert.Equal(16_000, _apic.NextTimerDeadline);
        Assert.Equal(1000u, _apic.ReadRegister(ApicRegister.TimerCurrentCount));

        _clock.Advance(8000);
        Assert.Equal(500u, _apic.ReadRegister(ApicRegister.TimerCurrentCount));
        _clock.Advance(7999);
        _apic.AssertNoInterrupt();
        _clock.Advance(1);
        Assert.Equal(0xEC, _apic.TakeInterrupt());
        Assert.Equal(0u, _apic.ReadRegister(ApicRegister.TimerCurrentCount));
        Assert.Equal(long.MaxValue, _apic.NextTimerDeadline);
        Assert.Equal(1000u, _apic.ReadRegister(ApicRegister.TimerInitialCount));
    }

    [Fact]
    public void MaskedTimerRunsOutWithoutAnInterrupt()
    {
        _apic.SoftwareEnable();
        _apic.WriteRegister(ApicRegister.LvtTimer, 0xEC | LocalApic.LvtMasked);
        _apic.WriteRegister(ApicRegister.TimerDivideConfiguration, 0xB); // divide by 1
        _apic.WriteRegister(ApicRegister.TimerInitialCount, 100);
        _clock.Advance(100);
        _apic.AssertNoInterrupt();
        Assert.Equal(0u, _apic.ReadRegister(ApicRegister.TimerCurrentCount));
    }

    [Fact]
    public void PeriodicTimerReloadsAndCoalescesMissedPeriods()
    {
        _apic.SoftwareEnable();
        _apic.WriteRegister(ApicRegister.LvtTimer, 0xEC | (1u << 17));
        _apic.WriteRegister(ApicRegister.TimerDivideConfiguration, 0x0); // divide by 2
        _apic.WriteRegister(ApicRegister.TimerInitialCount, 500_000); // 1 ms

        _clock.AdvanceMicroseconds(1000);
        Assert.Equal(0xEC, _apic.TakeInterrupt());
        _apic.EndOfInterrupt();
        Assert.Equal(2_000_000, _apic.NextTimerDeadline);
        _clock.AdvanceMicroseconds(250);
        Assert.Equal(375_000u, _apic.ReadRegister(ApicRegister.TimerCurrentCount));

        _clock.AdvanceMicroseconds(3250); // 4.5 ms: three periods elapsed, one interrupt
        Assert.Equal(0xEC, _apic.TakeInterrupt());
        _apic.EndOfInterrupt();
        _apic.AssertNoInterrupt();
        Assert.Equal(5_000_000, _apic.NextTimerDeadline);
    }

    [Fact]
    public void PeriodicTimerHasAMinimumPeriod()
    {
        _apic.SoftwareEnable();
        _apic.WriteRegister(ApicRegister.LvtTimer, 0xEC | (1u << 17));
        _apic.WriteRegister(ApicRegister.TimerDivideConfiguration, 0xB);
        _apic.WriteRegister(ApicRegister.TimerInitialCount, 10);
        Assert.Equal(LocalApic.MinimumPeriodNanoseconds, _apic.NextTimerDeadline);
        Assert.Contains("periodic timer", _log.LastMessage);
    }

    [Fact]
    public void DivideChangeRescalesTheRemainingCount()
    {
        _apic.SoftwareEnable();
        _apic.WriteRegister(ApicRegister.LvtTimer, 0xEC);
        _apic.WriteRegister(ApicRegister.TimerDivideConfiguration, 0xB); // 1
        _apic.WriteRegister(ApicRegister.TimerInitialCount, 10_000);
        _clock.Advance(4000);
        _apic.WriteRegister(ApicRegister.TimerDivideConfiguration, 0x1); // 4
        Assert.Equal(6000u, _apic.ReadRegister(ApicRegister.TimerCurrentCount));
        Assert.Equal(4000 + 24_000, _apic.NextTimerDeadline);
    }

    [Fact]
    public void TscDeadlineTimerFiresAtTheDeadlineAndDisarms()
    {
        _apic.SoftwareEnable();
        _apic.WriteRegister(ApicRegister.LvtTimer, 0xEC | (2u << 17));
        _clock.Advance(10_000);
        ulong now = _time.ReadTsc();
        Assert.Equal(20_000UL, now); // 2 GHz

        Assert.True(_apic.WriteMsr(LocalApic.MsrTscDeadline, now + 4000));
        Assert.True(_apic.ReadMsr(LocalApic.MsrTscDeadline, out ulong armed));
        Assert.Equal(now + 4000, armed);
        Assert.Equal(12_000, _apic.NextTimerDeadline);

        // The count registers play no part in TSC-deadline mode.
        _apic.WriteRegister(ApicRegister.TimerInitialCount, 5);
        Assert.Equal(0u, _apic.ReadRegister(ApicRegister.TimerInitialCount));
        Assert.Equal(0u, _apic.ReadRegister(ApicRegister.TimerCurrentCount));

        _clock.Advance(1999);
        _apic.AssertNoInterrupt();
        _clock.Advance(1);
        Assert.Equal(0xEC, _apic.TakeInterrupt());
        Assert.True(_apic.ReadMsr(LocalApic.MsrTscDeadline, out ulong after));
        Assert.Equal(0UL, after);

        // A deadline in the past fires at once.
        _apic.EndOfInterrupt();
        _apic.WriteMsr(LocalApic.MsrTscDeadline, 1);
        Assert.Equal(0xEC, _apic.TakeInterrupt());
    }

    [Fact]
    public void LeavingTscDeadlineModeDisarmsAndDeadlineWritesInOtherModesAreIgnored()
    {
        _apic.SoftwareEnable();
        _apic.WriteRegister(ApicRegister.LvtTimer, 0xEC | (2u << 17));
        _apic.WriteMsr(LocalApic.MsrTscDeadline, 1_000_000);
        _apic.WriteRegister(ApicRegister.LvtTimer, 0xEC);
        Assert.Equal(long.MaxValue, _apic.NextTimerDeadline);

        _apic.WriteMsr(LocalApic.MsrTscDeadline, 1_000_000);
        Assert.True(_apic.ReadMsr(LocalApic.MsrTscDeadline, out ulong value));
        Assert.Equal(0UL, value);
        Assert.Equal(long.MaxValue, _apic.NextTimerDeadline);
    }

    [Fact]
    public void X2ApicModeUsesMsrsAndHidesThePage()
    {
        var ap = new LocalApic(5, _bus, _time);
        Assert.False(ap.ReadMsr(0x802, out _)); // not in x2APIC mode yet
        Assert.True(ap.WriteMsr(LocalApic.MsrApicBase, 0xFEE0_0000 | LocalApic.ApicBaseEnable | LocalApic.ApicBaseX2ApicEnable));
        Assert.True(ap.IsX2ApicMode);
        Assert.False(ap.IsMmioAddress(0xFEE0_0020));
        Assert.Equal(0xFFFF_FFFFu, ap.ReadRegister(ApicRegister.Id));

        Assert.True(ap.ReadMsr(0x802, out ulong id));
        Assert.Equal(5UL, id);
        Assert.True(ap.ReadMsr(0x803, out ulong version));
        Assert.Equal(0x50014UL, version);
        Assert.True(ap.ReadMsr(0x80D, out ulong ldr));
        Assert.Equal((0UL << 16) | (1UL << 5), ldr);

        Assert.False(ap.ReadMsr(0x80E, out _)); // no DFR
        Assert.False(ap.ReadMsr(0x831, out _)); // no ICR2
        Assert.False(ap.ReadMsr(0x80B, out _)); // EOI is write-only
        Assert.False(ap.ReadMsr(0x83F, out _)); // SELF_IPI is write-only
        Assert.False(ap.WriteMsr(0x802, 7)); // ID is read-only
        Assert.False(ap.WriteMsr(0x80D, 7)); // LDR is read-only
        Assert.False(ap.WriteMsr(0x80B, 1)); // EOI takes only zero
        Assert.False(ap.WriteMsr(0x828, 1)); // ESR takes only zero
        Assert.False(ap.WriteMsr(0x808, 1UL << 32)); // upper half reserved
        Assert.False(ap.WriteMsr(0x82F, 0)); // no CMCI LVT
        Assert.False(ap.ReadMsr(0x840, out _));

        Assert.True(ap.WriteMsr(0x80F, 0x1FF));
        Assert.True(ap.WriteMsr(0x808, 0x20));
        Assert.True(ap.ReadMsr(0x808, out ulong tpr));
        Assert.Equal(0x20UL, tpr);

        // SELF_IPI delivers a fixed edge interrupt to this APIC.
        Assert.True(ap.WriteMsr(0x83F, 0x55));
        Assert.Equal(0x55, ap.TakeInterrupt());
        Assert.True(ap.WriteMsr(0x80B, 0));
        Assert.False(ap.WriteMsr(0x83F, 0x155));

        Assert.True(ap.WriteMsr(0x830, (3UL << 32) | 0x4055));
        Assert.True(ap.ReadMsr(0x830, out ulong icr));
        Assert.Equal((3UL << 32) | 0x4055, icr);
    }

    [Fact]
    public void ApicBaseTransitionsFollowTheArchitecture()
    {
        const ulong Base = 0xFEE0_0000;
        ulong xapic = Base | LocalApic.ApicBaseEnable;
        ulong x2apic = xapic | LocalApic.ApicBaseX2ApicEnable;

        Assert.False(_apic.WriteMsr(LocalApic.MsrApicBase, Base | LocalApic.ApicBaseX2ApicEnable)); // x2APIC without enable
        Assert.False(_apic.WriteMsr(LocalApic.MsrApicBase, xapic | 0x1)); // reserved bit
        Assert.False(_apic.WriteMsr(LocalApic.MsrApicBase, xapic | (1UL << 50))); // above MAXPHYADDR

        Assert.True(_apic.WriteMsr(LocalApic.MsrApicBase, x2apic));
        Assert.False(_apic.WriteMsr(LocalApic.MsrApicBase, xapic)); // x2APIC -> xAPIC directly
        Assert.True(_apic.WriteMsr(LocalApic.MsrApicBase, Base)); // disable
        Assert.False(_apic.IsHardwareEnabled);
        Assert.True(_apic.AcceptsPicInterrupts);
        Assert.False(_apic.IsMmioAddress(Base));
        Assert.False(_apic.WriteMsr(LocalApic.MsrApicBase, x2apic)); // disabled -> x2APIC directly
        Assert.True(_apic.WriteMsr(LocalApic.MsrApicBase, xapic));
        Assert.Equal(xapic | LocalApic.ApicBaseBsp, _apic.ApicBase); // BSP is kept

        // Relocation moves the page.
        Assert.True(_apic.WriteMsr(LocalApic.MsrApicBase, 0xFED0_0000 | LocalApic.ApicBaseEnable));
        Assert.True(_apic.IsMmioAddress(0xFED0_0030));
        Assert.False(_apic.IsMmioAddress(Base));

        var noX2 = new LocalApic(3, _bus, _time, x2ApicSupported: false);
        Assert.False(noX2.WriteMsr(LocalApic.MsrApicBase, x2apic));
    }

    [Fact]
    public void HardwareDisabledApicIgnoresItsPageAndInterrupts()
    {
        _apic.SoftwareEnable();
        _apic.WriteMsr(LocalApic.MsrApicBase, 0xFEE0_0000);
        Assert.False(_apic.AcceptInterrupt(0x40, false));
        Span<byte> data = stackalloc byte[4];
        _apic.Read(ApicRegister.Version, data);
        Assert.Equal(0xFFFF_FFFFu, BitConverter.ToUInt32(data));
    }

    [Fact]
    public void Lint1InNmiModeRaisesAnNmiOnTheRisingEdge()
    {
        _apic.SoftwareEnable();
        _apic.WriteRegister(ApicRegister.LvtLint1, 0x400);
        _apic.SetLint1(true);
        Assert.True(_apic.PendingNmi);
        Assert.True(_apic.HasPendingEvents);
        Assert.True(_apic.TryTakeNmi());
        Assert.False(_apic.TryTakeNmi());
        _apic.SetLint1(true);
        Assert.False(_apic.PendingNmi);
        _apic.SetLint1(false);
        _apic.SetLint1(true);
        Assert.True(_apic.TryTakeNmi());
    }

    [Fact]
    public void AcceptedInterruptWakesAHaltedVcpuThread()
    {
        _apic.SoftwareEnable();
        var halted = new ManualResetEventSlim();
        int taken = -1;
        var vcpu = new Thread(() =>
        {
            halted.Set();
            while (!_apic.HasPendingEvents)
            {
                _apic.WaitForWakeup(TimeSpan.FromSeconds(30));
            }

            _apic.TryTakeInterrupt(out taken);
        });
        vcpu.Start();

        halted.Wait();
        _apic.AcceptInterrupt(0x61, false);
        Assert.True(vcpu.Join(TimeSpan.FromSeconds(20)), "the halted thread was not woken");
        Assert.Equal(0x61, taken);
    }

    [Fact]
    public void WaitReturnsAtOnceWhenAWakeArrivedBeforeIt()
    {
        _apic.Wake();
        Assert.True(_apic.WaitForWakeup(TimeSpan.FromSeconds(30)));
        Assert.False(_apic.WaitForWakeup(TimeSpan.Zero));
    }
}
