using SharpVisor.Emulator.Platform;

namespace SharpVisor.Emulator.Tests.Platform;

/// <summary>IPIs between local APICs over the APIC bus, as Linux sends them.</summary>
public class ApicIpiTests
{
    // ICR low fields.
    private const uint LevelAssert = 1u << 14;
    private const uint LevelTrigger = 1u << 15;
    private const uint Logical = 1u << 11;
    private const uint ModeLowest = 1u << 8;
    private const uint ModeNmi = 4u << 8;
    private const uint ModeInit = 5u << 8;
    private const uint ModeStartUp = 6u << 8;
    private const uint ShorthandSelf = 1u << 18;
    private const uint ShorthandAll = 2u << 18;
    private const uint ShorthandAllButSelf = 3u << 18;

    private readonly PlatformTimeBase _time = new(new ManualTimeProvider());
    private readonly ApicBus _bus = new();
    private readonly LocalApic _cpu0;
    private readonly LocalApic _cpu1;
    private readonly LocalApic _cpu2;

    public ApicIpiTests()
    {
        _cpu0 = new LocalApic(0, _bus, _time);
        _cpu1 = new LocalApic(1, _bus, _time);
        _cpu2 = new LocalApic(2, _bus, _time);
        foreach (LocalApic apic in _bus.LocalApics)
        {
            apic.SoftwareEnable();
        }
    }

    [Fact]
    public void FixedPhysicalIpiReachesOnlyItsDestination()
    {
        _cpu0.SendIpi(1, LevelAssert | 0xFD);
        Assert.True(_cpu1.IrrBit(0xFD));
        Assert.Equal(0xFD, _cpu1.TakeInterrupt());
        _cpu0.AssertNoInterrupt();
        _cpu2.AssertNoInterrupt();

        // Delivery status reads idle: the send completed.
        Assert.Equal(0u, _cpu0.ReadRegister(ApicRegister.InterruptCommandLow) & (1u << 12));
    }

    [Fact]
    public void PhysicalBroadcastReachesEveryone()
    {
        _cpu0.SendIpi(0xFF, LevelAssert | 0xF0);
        Assert.Equal(0xF0, _cpu0.TakeInterrupt());
        Assert.Equal(0xF0, _cpu1.TakeInterrupt());
        Assert.Equal(0xF0, _cpu2.TakeInterrupt());
    }

    [Fact]
    public void ShorthandsSelectSelfAllAndAllButSelf()
    {
        _cpu1.SendIpi(0, LevelAssert | ShorthandSelf | 0x41);
        Assert.Equal(0x41, _cpu1.TakeInterrupt());
        _cpu0.AssertNoInterrupt();

        _cpu1.SendIpi(0, LevelAssert | ShorthandAll | 0x42);
        Assert.Equal(0x42, _cpu0.TakeInterrupt());
        Assert.Equal(0x42, _cpu2.TakeInterrupt());
        Assert.True(_cpu1.IrrBit(0x42));

        _cpu1.SendIpi(0, LevelAssert | ShorthandAllButSelf | 0x53);
        Assert.Equal(0x53, _cpu0.TakeInterrupt());
        Assert.Equal(0x53, _cpu2.TakeInterrupt());
        Assert.False(_cpu1.IrrBit(0x53));
    }

    [Fact]
    public void LogicalFlatModeMatchesLogicalIdBits()
    {
        _cpu0.WriteRegister(ApicRegister.LogicalDestination, 0x0100_0000);
        _cpu1.WriteRegister(ApicRegister.LogicalDestination, 0x0200_0000);
        _cpu2.WriteRegister(ApicRegister.LogicalDestination, 0x0400_0000);

        _cpu0.SendIpi(0x02, LevelAssert | Logical | 0x61);
        Assert.True(_cpu1.IrrBit(0x61));
        Assert.False(_cpu0.IrrBit(0x61));
        Assert.False(_cpu2.IrrBit(0x61));

        _cpu0.SendIpi(0x05, LevelAssert | Logical | 0x62);
        Assert.True(_cpu0.IrrBit(0x62));
        Assert.True(_cpu2.IrrBit(0x62));
        Assert.False(_cpu1.IrrBit(0x62));
    }

    [Fact]
    public void LogicalClusterModeMatchesClusterThenMembers()
    {
        foreach (LocalApic apic in _bus.LocalApics)
        {
            apic.WriteRegister(ApicRegister.DestinationFormat, 0x0FFF_FFFF);
        }

        _cpu0.WriteRegister(ApicRegister.LogicalDestination, 0x1100_0000); // cluster 1, member 0
        _cpu1.WriteRegister(ApicRegister.LogicalDestination, 0x1200_0000); // cluster 1, member 1
        _cpu2.WriteRegister(ApicRegister.LogicalDestination, 0x2100_0000); // cluster 2, member 0
        Assert.Equal(0x0FFF_FFFFu, _cpu0.ReadRegister(ApicRegister.DestinationFormat));

        _cpu0.SendIpi(0x13, LevelAssert | Logical | 0x70);
        Assert.True(_cpu0.IrrBit(0x70));
        Assert.True(_cpu1.IrrBit(0x70));
        Assert.False(_cpu2.IrrBit(0x70));

        _cpu0.SendIpi(0x22, LevelAssert | Logical | 0x71);
        Assert.False(_cpu0.IrrBit(0x71) || _cpu1.IrrBit(0x71) || _cpu2.IrrBit(0x71));
    }

    [Fact]
    public void LowestPriorityPicksTheApicWithTheLowestTaskPriority()
    {
        _cpu0.WriteRegister(ApicRegister.LogicalDestination, 0x0100_0000);
        _cpu1.WriteRegister(ApicRegister.LogicalDestination, 0x0200_0000);
        _cpu2.WriteRegister(ApicRegister.LogicalDestination, 0x0400_0000);
        _cpu0.WriteRegister(ApicRegister.TaskPriority, 0x20);
        _cpu2.WriteRegister(ApicRegister.TaskPriority, 0x30);

        for (int i = 0; i < 3; i++)
        {
            _cpu2.SendIpi(0x07, LevelAssert | Logical | ModeLowest | 0x81);
            Assert.Equal(0x81, _cpu1.TakeInterrupt());
            _cpu1.EndOfInterrupt();
            Assert.False(_cpu0.IrrBit(0x81) || _cpu2.IrrBit(0x81));
        }
    }

    [Fact]
    public void LowestPriorityTiesRotateAmongEqualPriorities()
    {
        var receivers = new HashSet<int>();
        for (int i = 0; i < 6; i++)
        {
            _cpu0.SendIpi(0xFF, LevelAssert | ModeLowest | 0x90);
            foreach (LocalApic apic in _bus.LocalApics)
            {
                if (apic.TryTakeInterrupt(out _))
                {
                    receivers.Add(apic.VcpuId);
                    apic.EndOfInterrupt();
                }
            }
        }

        Assert.Equal(3, receivers.Count);
    }

    [Fact]
    public void NmiIpiSetsAPendingNmi()
    {
        _cpu0.SendIpi(2, LevelAssert | ModeNmi);
        Assert.True(_cpu2.PendingNmi);
        Assert.False(_cpu1.PendingNmi);
        Assert.True(_cpu2.TryTakeNmi());
    }

    [Fact]
    public void InitSipiSipiStartsAnApplicationProcessor()
    {
        Assert.True(_cpu1.IsWaitingForSipi);

        // Linux's wakeup_secondary_cpu_via_init: INIT assert, INIT de-assert, then two STARTUPs.
        _cpu0.SendIpi(1, LevelTrigger | LevelAssert | ModeInit);
        Assert.True(_cpu1.PendingInit);
        _cpu0.SendIpi(1, LevelTrigger | ModeInit);
        _cpu0.SendIpi(1, ModeStartUp | 0x9A);
        Assert.Equal(0x9A, _cpu1.PendingSipiVector);

        // INIT goes first: SIPI is not taken while INIT is pending.
        Assert.False(_cpu1.TryTakeSipi(out _));
        Assert.True(_cpu1.TryTakeInit());
        Assert.False(_cpu1.TryTakeInit());
        Assert.True(_cpu1.IsWaitingForSipi);
        Assert.True(_cpu1.TryTakeSipi(out int vector));
        Assert.Equal(0x9A, vector);
        Assert.False(_cpu1.IsWaitingForSipi);

        // The second STARTUP reaches a running CPU and is ignored.
        _cpu0.SendIpi(1, ModeStartUp | 0x9A);
        Assert.Null(_cpu1.PendingSipiVector);
        Assert.False(_cpu1.TryTakeSipi(out _));
    }

    [Fact]
    public void EventsComeOutInArchitecturalOrder()
    {
        _cpu1.WriteRegister(ApicRegister.LvtTimer, 0xEC);
        _cpu0.SendIpi(1, LevelAssert | 0x70);
        _cpu0.SendIpi(1, LevelAssert | ModeNmi);
        Assert.False(_cpu1.TryTakeEvent(nmiAllowed: true, interruptsAllowed: true, out _)); // still waiting for SIPI

        _cpu0.SendIpi(1, LevelTrigger | LevelAssert | ModeInit);
        _cpu0.SendIpi(1, ModeStartUp | 0x08);
        Assert.True(_cpu1.TryTakeEvent(true, true, out ApicEvent first));
        Assert.Equal(new ApicEvent(ApicEventKind.Init, 0), first);
        Assert.True(_cpu1.TryTakeEvent(true, true, out ApicEvent second));
        Assert.Equal(new ApicEvent(ApicEventKind.StartUp, 0x08), second);

        _cpu1.SoftwareEnable();
        _cpu0.SendIpi(1, LevelAssert | 0x70);
        _cpu0.SendIpi(1, LevelAssert | ModeNmi);
        Assert.True(_cpu1.TryTakeEvent(nmiAllowed: false, interruptsAllowed: true, out ApicEvent third));
        Assert.Equal(new ApicEvent(ApicEventKind.Interrupt, 0x70), third);
        Assert.False(_cpu1.TryTakeEvent(nmiAllowed: false, interruptsAllowed: false, out _));
        Assert.True(_cpu1.TryTakeEvent(nmiAllowed: true, interruptsAllowed: false, out ApicEvent fourth));
        Assert.Equal(ApicEventKind.Nmi, fourth.Kind);
    }

    [Fact]
    public void InitResetsTheApicButKeepsItsIdAndBase()
    {
        _cpu1.WriteRegister(ApicRegister.TaskPriority, 0x40);
        _cpu1.WriteRegister(ApicRegister.LvtTimer, 0xEC);
        _cpu1.AcceptInterrupt(0x66, false);
        _cpu0.SendIpi(1, LevelTrigger | LevelAssert | ModeInit);
        Assert.True(_cpu1.TryTakeInit());

        Assert.Equal(1u << 24, _cpu1.ReadRegister(ApicRegister.Id));
        Assert.Equal(0xFEE0_0800UL, _cpu1.ApicBase);
        Assert.Equal(0u, _cpu1.ReadRegister(ApicRegister.TaskPriority));
        Assert.Equal(0xFFu, _cpu1.ReadRegister(ApicRegister.SpuriousVector));
        Assert.Equal(LocalApic.LvtMasked, _cpu1.ReadRegister(ApicRegister.LvtTimer));
        Assert.False(_cpu1.IrrBit(0x66));
    }

    [Fact]
    public void StartupToARunningCpuIsIgnored()
    {
        _cpu1.WriteRegister(ApicRegister.SpuriousVector, 0x1FF);
        _cpu0.SendIpi(0, ModeStartUp | 0x10);
        Assert.Null(_cpu0.PendingSipiVector);
    }

    [Fact]
    public void X2ApicIpiUsesThe32BitDestination()
    {
        const ulong X2 = 0xFEE0_0000 | LocalApic.ApicBaseEnable | LocalApic.ApicBaseX2ApicEnable;
        Assert.True(_cpu0.WriteMsr(LocalApic.MsrApicBase, X2));
        Assert.True(_cpu2.WriteMsr(LocalApic.MsrApicBase, X2));

        Assert.True(_cpu0.WriteMsr(0x830, (2UL << 32) | LevelAssert | 0xE1));
        Assert.Equal(0xE1, _cpu2.TakeInterrupt());
        Assert.True(_cpu2.WriteMsr(0x80B, 0));
        _cpu1.AssertNoInterrupt();

        // Logical x2APIC: cluster 0, member bit 2 is CPU 2.
        Assert.True(_cpu0.WriteMsr(0x830, (0x0000_0004UL << 32) | LevelAssert | Logical | 0xE2));
        Assert.Equal(0xE2, _cpu2.TakeInterrupt());
    }

    [Fact]
    public void HardwareDisabledApicReceivesNothing()
    {
        _cpu1.WriteMsr(LocalApic.MsrApicBase, 0xFEE0_0000);
        _cpu0.SendIpi(0xFF, LevelAssert | 0x44);
        _cpu0.SendIpi(1, LevelTrigger | LevelAssert | ModeInit);
        Assert.False(_cpu1.PendingInit);
        Assert.True(_cpu2.IrrBit(0x44));
    }

    [Fact]
    public void IpiToAnotherThreadWakesIt()
    {
        var started = new ManualResetEventSlim();
        int taken = -1;
        var vcpu1 = new Thread(() =>
        {
            started.Set();
            while (!_cpu1.HasPendingEvents)
            {
                _cpu1.WaitForWakeup(TimeSpan.FromSeconds(30));
            }

            _cpu1.TryTakeInterrupt(out taken);
        });
        vcpu1.Start();
        started.Wait();
        _cpu0.SendIpi(1, LevelAssert | 0xFB);
        Assert.True(vcpu1.Join(TimeSpan.FromSeconds(20)));
        Assert.Equal(0xFB, taken);
    }
}
