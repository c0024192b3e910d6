using SharpVisor.Emulator.Platform;
using SharpVisor.Machine;
using SharpVisor.Memory;

namespace SharpVisor.Emulator.Tests.Platform;

/// <summary>The devices wired together as the emulator's machine uses them, driven through the buses.</summary>
public sealed class SoftwarePlatformTests : IDisposable
{
    private readonly ManualTimeProvider _clock = new();
    private readonly GuestMemory _memory = GuestMemory.CreateRam(32UL << 20);
    private readonly PortIoBus _ports = new();
    private readonly MmioBus _mmio = new();
    private readonly PlatformLog _log = new();
    private readonly SoftwarePlatform _platform;
    private readonly LocalApic _cpu0;
    private readonly LocalApic _cpu1;

    public SoftwarePlatformTests()
    {
        _platform = new SoftwarePlatform(_memory, 2, new PlatformTimeBase(_clock), _log);
        _platform.Register(_ports, _mmio);
        _cpu0 = _platform.IrqChip.GetLocalApic(0);
        _cpu1 = _platform.IrqChip.GetLocalApic(1);
    }

    public void Dispose() => _memory.Dispose();

    [Fact]
    public void PitTicksReachTheBspThroughThe8259InVirtualWireMode()
    {
        // Early boot: the BSP's LINT0 is ExtINT from reset; Linux has set up the 8259 and the PIT.
        InitPic();
        Out(0x21, 0xFE);
        ProgramPitPeriodic(11932); // 10 ms

        long deadline = _platform.NextDeadlineFor(0);
        Assert.InRange(deadline, 10_000_000, 10_001_000);
        _clock.Advance(deadline - 1);
        _platform.PollTimers();
        Assert.False(_cpu0.HasPendingEvents);
        _clock.Advance(1);
        _platform.PollTimers();
        Assert.True(_cpu0.HasPendingEvents);
        Assert.False(_cpu1.HasPendingEvents);
        Assert.Equal(0x30, _cpu0.TakeInterrupt());
        Out(0x20, 0x0B);
        Assert.Equal(0x01, In(0x20));
        Out(0x20, 0x20);
        _cpu0.AssertNoInterrupt();
    }

    [Fact]
    public void PitTicksReachTheBspThroughTheIoApicOnce8259IsMasked()
    {
        InitPic();
        Out(0x21, 0xFF);
        Out(0xA1, 0xFF);
        _cpu0.SoftwareEnable();
        _cpu0.WriteRegister(ApicRegister.LvtLint0, LocalApic.LvtMasked | 0x700);
        WriteIoApicEntry(0, 0x30, destination: 0);
        ProgramPitPeriodic(11932);

        AdvanceToNextDeadline();
        _platform.PollTimers();
        Assert.Equal(0x30, _cpu0.TakeInterrupt());
        Assert.False(_platform.IrqChip.Pic.OutputAsserted);
        _cpu0.EndOfInterrupt();

        AdvanceToNextDeadline();
        _platform.PollTimers();
        Assert.Equal(0x30, _cpu0.TakeInterrupt());
    }

    [Fact]
    public void HardwareDisabledApicTakesInterruptsStraightFromThe8259()
    {
        InitPic();
        Out(0x21, 0xFD);
        Assert.True(_platform.WriteMsr(0, LocalApic.MsrApicBase, 0xFEE0_0000));
        _platform.IrqChip.SetIrqLevel(1, true);
        Assert.True(_cpu0.HasPendingEvents);
        Assert.Equal(0x31, _cpu0.TakeInterrupt());
    }

    [Fact]
    public void LevelTriggeredGsiIsEoiedThroughTheLocalApicPage()
    {
        _cpu1.SoftwareEnable();
        WriteIoApicEntry(20, 0x62, destination: 1, level: true);
        _platform.IrqChip.SetIrqLevel(20, true);
        Assert.Equal(0x62, _cpu1.TakeInterrupt());
        _platform.IrqChip.SetIrqLevel(20, false);
        Assert.NotEqual(0UL, _platform.IrqChip.IoApic.GetRedirectionEntry(20) & IoApic.EntryRemoteIrr);

        _cpu1.Write(ApicRegister.EndOfInterrupt, new byte[4]);
        Assert.Equal(0UL, _platform.IrqChip.IoApic.GetRedirectionEntry(20) & IoApic.EntryRemoteIrr);
    }

    [Fact]
    public void Irq0CanFollowQemusInterruptSourceOverrideToPin2()
    {
        var time = new PlatformTimeBase(_clock);
        var chip = new SoftwareIrqChip(1, time) { Irq0IoApicPin = 2 };
        LocalApic cpu = chip.GetLocalApic(0);
        cpu.SoftwareEnable();
        cpu.WriteRegister(ApicRegister.LvtLint0, LocalApic.LvtMasked);
        chip.IoApic.Write(0, BitConverter.GetBytes(IoApic.RegisterRedirectionBase + 4));
        chip.IoApic.Write(0x10, BitConverter.GetBytes(0x30u));
        chip.IoApic.Write(0, BitConverter.GetBytes(IoApic.RegisterRedirectionBase));
        chip.IoApic.Write(0x10, BitConverter.GetBytes(0x3Fu));

        chip.SetIrqLevel(0, true);
        Assert.Equal(0x30, cpu.TakeInterrupt());
        chip.SetIrqLevel(2, true); // GSI 2 is not a separate input then
        cpu.AssertNoInterrupt();
        Assert.Throws<ArgumentOutOfRangeException>(() => new SoftwareIrqChip(1, time) { Irq0IoApicPin = 1 });
    }

    [Fact]
    public void MsiReachesTheDestinationApic()
    {
        _cpu1.SoftwareEnable();
        (ulong address, uint data) = MsiMessage.Encode(1, 0x41);
        _platform.IrqChip.SignalMsi(address, data);
        Assert.Equal(0x41, _cpu1.TakeInterrupt());
        _cpu0.AssertNoInterrupt();

        _platform.IrqChip.SignalMsi(0xDEAD_0000, 0x41);
        Assert.Contains("outside", _log.LastMessage);
        _platform.IrqChip.SignalMsi(MsiMessage.Encode(7, 0x41).Address, 0x41);
        Assert.Contains("reached no local APIC", _log.LastMessage);
    }

    [Fact]
    public void IsaIrqsFeedBothControllersAndHighGsisOnlyTheIoApic()
    {
        InitPic();
        Out(0x21, 0x00);
        Out(0xA1, 0x00);
        _cpu0.SoftwareEnable();
        _cpu0.WriteRegister(ApicRegister.LvtLint0, LocalApic.LvtMasked);
        WriteIoApicEntry(4, 0x44, destination: 0);
        _platform.IrqChip.SetIrqLevel(4, true);
        Assert.True(_platform.IrqChip.Pic.OutputAsserted);
        Assert.Equal(0x44, _cpu0.TakeInterrupt());

        _platform.IrqChip.SetIrqLevel(23, true);
        _platform.IrqChip.SetIrqLevel(24, true);
        Assert.Contains("no GSI 24", _log.LastMessage);
    }

    [Fact]
    public void IoApicAndPortsAreOnTheBuses()
    {
        Span<byte> data = stackalloc byte[4];
        Assert.True(_mmio.Write(IoApic.DefaultBaseAddress, BitConverter.GetBytes(1u)));
        Assert.True(_mmio.Read(IoApic.DefaultBaseAddress + 0x10, data));
        Assert.Equal(0x0017_0011u, BitConverter.ToUInt32(data));

        foreach (ushort port in (ushort[])[0x20, 0x21, 0xA0, 0xA1, 0x4D0, 0x4D1, 0x40, 0x41, 0x42, 0x43, 0x61, 0x70, 0x71])
        {
            Assert.True(_ports.Read(port, data[..1]), $"port 0x{port:x} is not claimed");
        }

        // The local APIC page is per vCPU: the vCPU routes it, the shared bus does not claim it.
        Assert.False(_mmio.Read(LocalApic.DefaultBaseAddress, data));
        Assert.True(_cpu1.IsMmioAddress(LocalApic.DefaultBaseAddress + 0x20));
    }

    [Fact]
    public void MsrsAreDispatchedToTheRightDevice()
    {
        Assert.True(SoftwarePlatform.HandlesMsr(LocalApic.MsrApicBase));
        Assert.True(SoftwarePlatform.HandlesMsr(0x830));
        Assert.True(SoftwarePlatform.HandlesMsr(KvmClock.MsrSystemTimeNew));
        Assert.False(SoftwarePlatform.HandlesMsr(0xC000_0080));

        Assert.True(_platform.ReadMsr(1, LocalApic.MsrApicBase, out ulong apicBase));
        Assert.Equal(0xFEE0_0800UL, apicBase);
        Assert.True(_platform.WriteMsr(1, KvmClock.MsrSystemTimeNew, 0x2000 | 1));
        Assert.True(_platform.KvmClock.IsEnabled(1));
        Assert.Equal(1, _platform.Rtc.ReadRegister(0x5F));
    }

    [Fact]
    public void PauseStopsVirtualTimeAndResumeFlagsTheGuest()
    {
        _platform.WriteMsr(0, KvmClock.MsrSystemTimeNew, 0x3000 | 1);
        _clock.AdvanceMilliseconds(5);
        _platform.Pause();
        long paused = _platform.Time.NowNanoseconds;
        _clock.AdvanceMilliseconds(500);
        Assert.Equal(paused, _platform.Time.NowNanoseconds);
        Assert.True(_platform.Time.IsPaused);
        _platform.Resume();
        _clock.AdvanceMilliseconds(1);
        Assert.Equal(paused + 1_000_000, _platform.Time.NowNanoseconds);
        Assert.Equal(KvmClock.PvclockTscStableBit | KvmClock.PvclockGuestStopped, _memory.Read<byte>(0x3000 + 29));
    }

    [Fact]
    public void ApTimerAndIpiWakeAHaltedVcpu()
    {
        _cpu1.SoftwareEnable();
        _cpu1.WriteRegister(ApicRegister.LvtTimer, 0xEC);
        _cpu1.WriteRegister(ApicRegister.TimerDivideConfiguration, 0xB);
        _cpu1.WriteRegister(ApicRegister.TimerInitialCount, 1_000_000);
        Assert.Equal(1_000_000, _platform.NextDeadlineFor(1));
        _clock.AdvanceMilliseconds(1);
        _cpu1.UpdateTimer();
        Assert.Equal(0xEC, _cpu1.TakeInterrupt());
        Assert.Equal(long.MaxValue, _platform.NextDeadlineFor(1));
    }

    private void AdvanceToNextDeadline() => _clock.Advance(_platform.NextDeadline - _platform.Time.NowNanoseconds);

    private void InitPic()
    {
        foreach ((ushort port, byte value) in (ReadOnlySpan<(ushort, byte)>)[(0x20, 0x11), (0x21, 0x30), (0x21, 0x04), (0x21, 0x01), (0xA0, 0x11), (0xA1, 0x38), (0xA1, 0x02), (0xA1, 0x01)])
        {
            Out(port, value);
        }
    }

    private void ProgramPitPeriodic(int latch)
    {
        Out(0x43, 0x34);
        Out(0x40, (byte)latch);
        Out(0x40, (byte)(latch >> 8));
    }

    private void WriteIoApicEntry(int pin, int vector, uint destination, bool level = false)
    {
        WriteIoApic(IoApic.RegisterRedirectionBase + (uint)(2 * pin) + 1, destination << 24);
        WriteIoApic(IoApic.RegisterRedirectionBase + (uint)(2 * pin), (uint)vector | (level ? (uint)IoApic.EntryLevelTriggered : 0));
    }

    private void WriteIoApic(uint register, uint value)
    {
        Assert.True(_mmio.Write(IoApic.DefaultBaseAddress, BitConverter.GetBytes(register)));
        Assert.True(_mmio.Write(IoApic.DefaultBaseAddress + 0x10, BitConverter.GetBytes(value)));
    }

    private void Out(ushort port, byte value) => Assert.True(_ports.Write(port, [value]));

    private byte In(ushort port)
    {
        Span<byte> data = stackalloc byte[1];
        Assert.True(_ports.Read(port, data));
        return data[0];
    }
}
