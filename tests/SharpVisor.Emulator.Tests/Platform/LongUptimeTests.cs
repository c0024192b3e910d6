using System.Numerics;
using SharpVisor.Emulator.Platform;
using SharpVisor.Machine;
using SharpVisor.Memory;

namespace SharpVisor.Emulator.Tests.Platform;

/// <summary>
/// Issue 17, item 4, the audit of every time conversion: after a day, a month and a year of
/// virtual uptime the TSC, the PIT, the LAPIC timer, kvmclock and the RTC still compute exactly
/// what they do after a second (products of nanoseconds and a frequency are 128-bit; none
/// overflows before long.MaxValue nanoseconds, about 292 years).
/// </summary>
public sealed class LongUptimeTests : IDisposable
{
    private const long Day = 86_400L * 1_000_000_000;

    private readonly ManualTimeProvider _clock = new(new DateTimeOffset(2024, 3, 15, 13, 45, 30, TimeSpan.Zero));
    private readonly GuestMemory _memory = GuestMemory.CreateRam(16UL << 20);

    public static TheoryData<long> Uptimes => new() { Day, 31 * Day, 92 * Day, 366 * Day };

    public void Dispose() => _memory.Dispose();

    [Theory]
    [MemberData(nameof(Uptimes))]
    public void TscIsExactAndRoundTrips(long uptime)
    {
        var time = new PlatformTimeBase(_clock, 2_345_678_901);
        _clock.Advance(uptime);
        ulong tsc = time.ReadTsc();
        Assert.Equal((ulong)(new BigInteger(uptime) * 2_345_678_901 / 1_000_000_000), tsc);
        Assert.InRange(time.TscToNanoseconds(tsc), uptime - 1, uptime);
    }

    [Theory]
    [MemberData(nameof(Uptimes))]
    public void PitChannel2CountsItsLatchAfterLongUptime(long uptime)
    {
        var ports = new PortIoBus();
        var pit = new Pit8254(new PlatformTimeBase(_clock), new RecordingInterruptController());
        pit.RegisterPorts(ports);
        _clock.Advance(uptime + 123_456);

        // Linux's pit_calibrate_tsc: mode 0 on channel 2, gate on, 50 ms latch.
        const int Latch = 1_193_182 / 20;
        long loadTick = (long)(new BigInteger(_clock.Nanoseconds) * 1_193_182 / 1_000_000_000);
        Out(ports, 0x61, (byte)((In(ports, 0x61) & ~0x02) | 0x01));
        Out(ports, 0x43, 0xB0);
        Out(ports, 0x42, Latch & 0xFF);
        Out(ports, 0x42, Latch >> 8);
        Assert.Equal(0, In(ports, 0x61) & 0x20);

        long rise = (long)(((new BigInteger(loadTick + Latch) * 1_000_000_000) + 1_193_182 - 1) / 1_193_182);
        _clock.Advance(rise - 1 - _clock.Nanoseconds);
        Assert.Equal(0, In(ports, 0x61) & 0x20);
        _clock.Advance(1);
        Assert.Equal(0x20, In(ports, 0x61) & 0x20);
    }

    [Theory]
    [MemberData(nameof(Uptimes))]
    public void LapicOneShotTimerKeepsItsDeadlineAfterLongUptime(long uptime)
    {
        var time = new PlatformTimeBase(_clock);
        var apic = new LocalApic(0, new ApicBus(), time);
        _clock.Advance(uptime);
        apic.SoftwareEnable();
        apic.WriteRegister(ApicRegister.LvtTimer, 0xEC);
        apic.WriteRegister(ApicRegister.TimerDivideConfiguration, 0xB); // divide by 1
        apic.WriteRegister(ApicRegister.TimerInitialCount, 0xFFFF_FFFF);
        Assert.Equal(uptime + 0xFFFF_FFFFL, apic.NextTimerDeadline);

        _clock.Advance(1_000_000_000);
        Assert.Equal(0xFFFF_FFFFu - 1_000_000_000u, apic.ReadRegister(ApicRegister.TimerCurrentCount));

        // TSC-deadline mode: the deadline is the nanosecond the TSC reaches the written value.
        apic.WriteRegister(ApicRegister.LvtTimer, 0xEC | (2u << 17));
        ulong deadlineTsc = time.ReadTsc() + 2_000_000;
        Assert.True(apic.WriteMsr(0x6E0, deadlineTsc));
        Assert.Equal(_clock.Nanoseconds + 1_000_000, apic.NextTimerDeadline);
    }

    [Theory]
    [MemberData(nameof(Uptimes))]
    public void KvmclockSystemTimeIsExactAfterLongUptime(long uptime)
    {
        var time = new PlatformTimeBase(_clock);
        var kvmclock = new KvmClock(_memory, time, 1);
        _clock.Advance(uptime);
        Assert.True(kvmclock.WriteMsr(0, KvmClock.MsrSystemTimeNew, 0x10_0040 | 1));
        ulong systemTime = _memory.Read<ulong>(0x10_0040 + 16);
        ulong tscTimestamp = _memory.Read<ulong>(0x10_0040 + 8);
        Assert.Equal((ulong)uptime, systemTime);
        Assert.Equal(time.NanosecondsToTsc(uptime), tscTimestamp);

        // Linux's pvclock: system_time + ((tsc - tsc_timestamp) * mul >> 32) at 2 GHz (shift 0).
        _clock.Advance(1_234_567_891);
        ulong delta = time.ReadTsc() - tscTimestamp;
        uint multiplier = _memory.Read<uint>(0x10_0040 + 24);
        ulong guestNs = systemTime + (ulong)(((UInt128)delta * multiplier) >> 32);
        Assert.Equal((ulong)_clock.Nanoseconds, guestNs);
    }

    [Theory]
    [MemberData(nameof(Uptimes))]
    public void RtcShowsTheDateAfterLongUptime(long uptime)
    {
        var ports = new PortIoBus();
        var rtc = new CmosRtc(new PlatformTimeBase(_clock), new RecordingInterruptController());
        rtc.RegisterPorts(ports);
        _clock.Advance(uptime);
        DateTimeOffset expected = new DateTimeOffset(2024, 3, 15, 13, 45, 30, TimeSpan.Zero).AddTicks(uptime / 100);

        Assert.Equal(Bcd(expected.Second), Cmos(ports, 0x00));
        Assert.Equal(Bcd(expected.Minute), Cmos(ports, 0x02));
        Assert.Equal(Bcd(expected.Hour), Cmos(ports, 0x04));
        Assert.Equal(Bcd(expected.Day), Cmos(ports, 0x07));
        Assert.Equal(Bcd(expected.Month), Cmos(ports, 0x08));
        Assert.Equal(Bcd(expected.Year % 100), Cmos(ports, 0x09));
    }

    private static byte Bcd(int value) => (byte)(((value / 10) << 4) | (value % 10));

    private static byte Cmos(PortIoBus ports, int index)
    {
        Out(ports, 0x70, (byte)index);
        return In(ports, 0x71);
    }

    private static void Out(PortIoBus ports, ushort port, int value) => Assert.True(ports.Write(port, [(byte)value]));

    private static byte In(PortIoBus ports, ushort port)
    {
        Span<byte> data = stackalloc byte[1];
        Assert.True(ports.Read(port, data));
        return data[0];
    }
}
