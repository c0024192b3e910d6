using SharpVisor.Emulator.Platform;
using SharpVisor.Machine;
using SharpVisor.Memory;

namespace SharpVisor.Emulator.Tests.Platform;

public class CmosRtcTests
{
    // Friday 2024-03-15 13:45:30.000 UTC.
    private readonly ManualTimeProvider _clock = new(new DateTimeOffset(2024, 3, 15, 13, 45, 30, TimeSpan.Zero));
    private readonly RecordingInterruptController _interrupts = new();
    private readonly PlatformLog _log = new();
    private readonly CmosRtc _rtc;
    private readonly PortIoBus _ports = new();

    public CmosRtcTests()
    {
        _rtc = new CmosRtc(new PlatformTimeBase(_clock), _interrupts, _log);
        _rtc.RegisterPorts(_ports);
    }

    [Fact]
    public void TimeAndDateReadInBcdByDefault()
    {
        Assert.Equal(0x30, Read(0x00));
        Assert.Equal(0x45, Read(0x02));
        Assert.Equal(0x13, Read(0x04));
        Assert.Equal(0x06, Read(0x06)); // Friday (Sunday = 1)
        Assert.Equal(0x15, Read(0x07));
        Assert.Equal(0x03, Read(0x08));
        Assert.Equal(0x24, Read(0x09));
        Assert.Equal(0x20, Read(0x32));
    }

    [Fact]
    public void BinaryModeAndTwelveHourMode()
    {
        Write(0x0B, CmosRtc.Hour24Mode | CmosRtc.BinaryMode);
        Assert.Equal(30, Read(0x00));
        Assert.Equal(45, Read(0x02));
        Assert.Equal(13, Read(0x04));
        Assert.Equal(24, Read(0x09));
        Assert.Equal(20, Read(0x32));

        Write(0x0B, 0x00); // BCD, 12-hour
        Assert.Equal(0x81, Read(0x04)); // 1 PM
        Write(0x0B, CmosRtc.BinaryMode);
        Assert.Equal(0x81, Read(0x04));
    }

    [Fact]
    public void ClockFollowsVirtualTime()
    {
        _clock.Advance(90L * 1_000_000_000);
        Assert.Equal(0x00, Read(0x00));
        Assert.Equal(0x47, Read(0x02));

        // 10 h 13 min to midnight, 16 days on: 2024-04-01 00:00:00.
        _clock.Advance(((((16 * 24) + 10) * 3600L) + (13 * 60)) * 1_000_000_000);
        Assert.Equal(0x01, Read(0x07));
        Assert.Equal(0x04, Read(0x08));
        Assert.Equal(0x00, Read(0x04));
        Assert.Equal(0x00, Read(0x02));
        Assert.Equal(0x02, Read(0x06)); // Monday
    }

    [Fact]
    public void GuestSetsTheTimeWithTheSetBitHeld()
    {
        // mc146818_set_time: SET, write registers in BCD, release SET.
        Write(0x0B, CmosRtc.SetClock | CmosRtc.Hour24Mode);
        Assert.Equal(0x30, Read(0x00)); // frozen registers hold the time when SET was raised
        Write(0x00, 0x05);
        Write(0x02, 0x04);
        Write(0x04, 0x03);
        Write(0x07, 0x02);
        Write(0x08, 0x01);
        Write(0x09, 0x99);
        Write(0x32, 0x19);
        _clock.Advance(5L * 1_000_000_000);
        Assert.Equal(0x05, Read(0x00)); // no updates while SET is held
        Write(0x0B, CmosRtc.Hour24Mode);

        Assert.Equal(new DateTime(1999, 1, 2, 3, 4, 5, DateTimeKind.Utc), _rtc.GuestTime);
        _clock.Advance(2L * 1_000_000_000);
        Assert.Equal(0x07, Read(0x00));
        Assert.Equal(0x99, Read(0x09));
        Assert.Equal(0x19, Read(0x32));
    }

    [Fact]
    public void InvalidGuestTimeIsRejected()
    {
        Write(0x0B, CmosRtc.SetClock | CmosRtc.Hour24Mode);
        Write(0x08, 0x13); // month 13
        Write(0x0B, CmosRtc.Hour24Mode);
        Assert.Equal(0x03, Read(0x08));
        Assert.Contains("invalid", _log.LastMessage);
    }

    [Fact]
    public void ClockSetToTheEndOfTimeSaturates()
    {
        Write(0x0B, CmosRtc.SetClock | CmosRtc.Hour24Mode | CmosRtc.BinaryMode | CmosRtc.UpdateEndedInterruptEnable);
        foreach ((int index, byte value) in (ReadOnlySpan<(int, byte)>)[(0x00, 59), (0x02, 59), (0x04, 23), (0x07, 31), (0x08, 12), (0x09, 99), (0x32, 99)])
        {
            Write(index, value);
        }

        Write(0x0B, CmosRtc.Hour24Mode | CmosRtc.BinaryMode | CmosRtc.UpdateEndedInterruptEnable);
        _clock.Advance(5L * 1_000_000_000);
        _rtc.Poll();
        Assert.Equal(99, Read(0x09));
        Assert.Equal(59, Read(0x00));
        Assert.Equal(99, Read(0x32));
    }

    [Fact]
    public void StatusRegistersAreSane()
    {
        Assert.Equal(CmosRtc.ValidRamAndTime, Read(0x0D));
        Write(0x0D, 0x00);
        Assert.Equal(CmosRtc.ValidRamAndTime, Read(0x0D));
        Assert.Equal(0x26, Read(0x0A));
        Assert.Equal(CmosRtc.Hour24Mode, Read(0x0B));
        Assert.Equal(0x00, Read(0x0C));
    }

    [Fact]
    public void UpdateInProgressIsSetJustBeforeEachSecond()
    {
        _clock.Advance(1_000_000_000 - CmosRtc.UpdateInProgressNs - 1);
        Assert.Equal(0, Read(0x0A) & CmosRtc.UpdateInProgress);
        _clock.Advance(1);
        Assert.Equal(CmosRtc.UpdateInProgress, Read(0x0A) & CmosRtc.UpdateInProgress);
        _clock.Advance(CmosRtc.UpdateInProgressNs);
        Assert.Equal(0, Read(0x0A) & CmosRtc.UpdateInProgress);
        Assert.Equal(0x31, Read(0x00));
    }

    [Fact]
    public void IndexBit7MasksNmiAndNvramKeepsData()
    {
        Out(0x70, 0x80 | 0x40);
        Assert.True(_rtc.NmiMasked);
        Out(0x71, 0x5A);
        Out(0x70, 0x40);
        Assert.False(_rtc.NmiMasked);
        Assert.Equal(0x5A, In(0x71));
    }

    [Fact]
    public void MemorySizeBytesFollowQemuLayout()
    {
        _rtc.SetMemorySize(3UL << 30, 5UL << 30);
        Assert.Equal(640, Word(0x15));
        Assert.Equal(0xFFFF, Word(0x17));
        Assert.Equal(0xFFFF, Word(0x30));
        Assert.Equal(((3UL << 30) - (16UL << 20)) / (64 << 10), (ulong)Word(0x34));
        ulong high = (5UL << 30) / (64 << 10);
        Assert.Equal(high, Read(0x5B) | ((ulong)Read(0x5C) << 8) | ((ulong)Read(0x5D) << 16));
    }

    [Fact]
    public void MemorySizeFromSmallGuestMemory()
    {
        using GuestMemory memory = GuestMemory.CreateRam(64UL << 20);
        _rtc.SetMemorySize(memory);
        _rtc.SetCpuCount(2);
        Assert.Equal((64 - 1) * 1024, Word(0x17));
        Assert.Equal((64 - 16) * 16, Word(0x34));
        Assert.Equal(0, Read(0x5B) | Read(0x5C) | Read(0x5D));
        Assert.Equal(1, Read(0x5F));
    }

    [Fact]
    public void UpdateEndedInterruptRaisesIrq8UntilRegisterCIsRead()
    {
        Write(0x0B, CmosRtc.Hour24Mode | CmosRtc.UpdateEndedInterruptEnable);
        Assert.Equal(1_000_000_000, _rtc.NextDeadline);
        _clock.Advance(999_999_999);
        _rtc.Poll();
        Assert.False(_interrupts.Level(8));
        _clock.Advance(1);
        _rtc.Poll();
        Assert.True(_interrupts.Level(8));
        // PF also runs at register A's default 1024 Hz; it just does not interrupt without PIE.
        Assert.Equal(CmosRtc.InterruptRequestFlag | CmosRtc.UpdateEndedFlag, Read(0x0C) & ~CmosRtc.PeriodicFlag);
        Assert.False(_interrupts.Level(8));
        Assert.Equal(0, Read(0x0C));
        Assert.Equal(2_000_000_000, _rtc.NextDeadline);
    }

    [Fact]
    public void PeriodicInterruptAtTheRateOfRegisterA()
    {
        Write(0x0A, 0x26); // 1024 Hz
        Write(0x0B, CmosRtc.Hour24Mode | CmosRtc.PeriodicInterruptEnable);
        Assert.Equal(976_562, _rtc.NextDeadline);
        _clock.Advance(976_562);
        _rtc.Poll();
        Assert.Equal(1, _interrupts.RisingEdges(8));
        Assert.Equal(CmosRtc.InterruptRequestFlag | CmosRtc.PeriodicFlag, Read(0x0C) & 0xF0);

        _clock.Advance(976_562);
        _rtc.Poll();
        Assert.Equal(2, _interrupts.RisingEdges(8));
    }

    [Fact]
    public void AlarmFiresAtTheMatchingSecond()
    {
        Write(0x01, 0x33);
        Write(0x03, 0xC0); // any minute
        Write(0x05, 0xFF); // any hour
        Write(0x0B, CmosRtc.Hour24Mode | CmosRtc.AlarmInterruptEnable);
        for (int second = 31; second <= 33; second++)
        {
            _clock.Advance(1_000_000_000);
            _rtc.Poll();
            Assert.Equal(second == 33, _interrupts.Level(8));
        }

        Assert.Equal(CmosRtc.AlarmFlag, Read(0x0C) & CmosRtc.AlarmFlag);
    }

    private int Word(int index) => Read(index) | (Read(index + 1) << 8);

    private byte Read(int index)
    {
        Out(0x70, (byte)index);
        return In(0x71);
    }

    private void Write(int index, byte value)
    {
        Out(0x70, (byte)index);
        Out(0x71, value);
    }

    private void Out(ushort port, byte value) => Assert.True(_ports.Write(port, [value]));

    private byte In(ushort port)
    {
        Span<byte> data = stackalloc byte[1];
        Assert.True(_ports.Read(port, data));
        return data[0];
    }
}
