using SharpVisor.Emulator.Platform;
using SharpVisor.Machine;

namespace SharpVisor.Emulator.Tests.Platform;

/// <summary>The 8254 as Linux drives it: TSC calibration on channel 2 through port 0x61, the clockevent on channel 0.</summary>
public class Pit8254Tests
{
    private readonly ManualTimeProvider _clock = new();
    private readonly RecordingInterruptController _interrupts = new();
    private readonly Pit8254 _pit;
    private readonly PortIoBus _ports = new();

    public Pit8254Tests()
    {
        _pit = new Pit8254(new PlatformTimeBase(_clock), _interrupts);
        _pit.RegisterPorts(_ports);
    }

    [Fact]
    public void LinuxPitCalibrateTscSeesOut2RiseAfterExactlyTheLatchTicks()
    {
        _clock.Advance(123_456);
        long loadTick = TickAt(_clock.Nanoseconds);

        // arch/x86/kernel/tsc.c pit_calibrate_tsc(latch = CLOCK_TICK_RATE / (1000 / 50), 50, ...)
        const int Latch = 1_193_182 / 20;
        Out(0x61, (byte)((In(0x61) & ~0x02) | 0x01));
        Out(0x43, 0xB0);
        Out(0x42, Latch & 0xFF);
        Out(0x42, Latch >> 8);
        Assert.Equal(0, In(0x61) & 0x20);

        long rise = NanosecondsForTick(loadTick + Latch);
        _clock.Advance(rise - 1 - _clock.Nanoseconds);
        Assert.Equal(0, In(0x61) & 0x20);
        _clock.Advance(1);
        Assert.Equal(0x20, In(0x61) & 0x20);
        Assert.InRange(rise - 123_456, 49_999_000, 50_000_000);

        // Mode 0's OUT stays high after terminal count.
        _clock.AdvanceMilliseconds(100);
        Assert.Equal(0x20, In(0x61) & 0x20);
        Assert.Empty(_interrupts.Changes); // channel 2 has no IRQ
    }

    [Fact]
    public void LinuxCalibrationLoopMeasuresTheAdvertisedTscFrequency()
    {
        // pit_calibrate_tsc as a guest runs it: every loop iteration costs some virtual time.
        var time = new PlatformTimeBase(_clock, 2_400_000_000);
        var pit = new Pit8254(time, null);
        var ports = new PortIoBus();
        pit.RegisterPorts(ports);
        Span<byte> b = stackalloc byte[1];

        ports.Read(0x61, b);
        ports.Write(0x61, [(byte)((b[0] & ~0x02) | 0x01)]);
        ports.Write(0x43, [0xB0]);
        const int Latch = 1_193_182 / 20;
        ports.Write(0x42, [Latch & 0xFF]);
        ports.Write(0x42, [Latch >> 8]);
        ulong t1 = time.ReadTsc();
        int loops = 0;
        while (true)
        {
            _clock.Advance(1_700);
            ports.Read(0x61, b);
            if ((b[0] & 0x20) != 0)
            {
                break;
            }

            loops++;
        }

        ulong t2 = time.ReadTsc();
        ulong khz = (t2 - t1) / 50;
        Assert.True(loops > 1000, "Linux wants many PIT reads (loopmin)");
        Assert.InRange((long)khz, 2_399_900, 2_400_200);
    }

    [Fact]
    public void QuickPitCalibrateReadsTheCountDownByteByByte()
    {
        // quick_pit_calibrate: gate on, counter 2 mode 0 from 0xFFFF, then inb LSB/MSB pairs without latching.
        Out(0x61, 0x01);
        Out(0x43, 0xB0);
        Out(0x42, 0xFF);
        Out(0x42, 0xFF);
        Assert.Equal(0xFF, In(0x42));
        Assert.Equal(0xFF, In(0x42));

        for (int i = 1; i <= 20; i++)
        {
            _clock.Advance(NanosecondsForTick(256 * i) - _clock.Nanoseconds);
            int lsb = In(0x42);
            int msb = In(0x42);
            Assert.Equal(0xFF - i, msb);
            Assert.Equal(0xFF, lsb);
        }
    }

    [Fact]
    public void GateLowSuspendsMode0Counting()
    {
        Out(0x61, 0x01);
        Out(0x43, 0xB0);
        Out(0x42, 1000 & 0xFF);
        Out(0x42, 1000 >> 8);
        AdvanceToTick(300);
        Assert.Equal(700, ReadCount(2));

        Out(0x61, 0x00);
        AdvanceToTick(800);
        Assert.Equal(700, ReadCount(2));
        Assert.Equal(0, In(0x61) & 0x20);

        Out(0x61, 0x01);
        AdvanceToTick(1499);
        Assert.Equal(0, In(0x61) & 0x20);
        AdvanceToTick(1500);
        Assert.Equal(0x20, In(0x61) & 0x20);
    }

    [Fact]
    public void Channel0RateGeneratorPulsesIrq0OncePerPeriod()
    {
        // init_pit_timer / pit_set_periodic for HZ=250.
        const int Latch = (1_193_182 + 125) / 250;
        Out(0x43, 0x34);
        Out(0x40, Latch & 0xFF);
        Out(0x40, Latch >> 8);
        Assert.Equal(NanosecondsForTick(Latch), _pit.NextDeadline);

        AdvanceToTick(Latch - 1);
        _pit.Poll();
        Assert.Equal(0, _interrupts.RisingEdges(0));
        AdvanceToTick(Latch);
        _pit.Poll();
        Assert.Equal(1, _interrupts.RisingEdges(0));
        Assert.False(_interrupts.Level(0)); // a pulse: asserted, then released
        _pit.Poll();
        Assert.Equal(1, _interrupts.RisingEdges(0));

        // Ten periods without a poll coalesce into one interrupt.
        AdvanceToTick((11 * Latch) + 5);
        _pit.Poll();
        Assert.Equal(2, _interrupts.RisingEdges(0));
        Assert.Equal(NanosecondsForTick(12 * Latch), _pit.NextDeadline);
    }

    [Fact]
    public void Channel0OneShotFiresOncePerCountWritten()
    {
        // pit_set_oneshot then pit_next_event(delta): mode 4, count written LSB then MSB.
        Out(0x43, 0x38);
        Out(0x40, 100);
        Out(0x40, 0);
        AdvanceToTick(100);
        _pit.Poll();
        Assert.Equal(1, _interrupts.RisingEdges(0));
        AdvanceToTick(100_000);
        _pit.Poll();
        Assert.Equal(1, _interrupts.RisingEdges(0));
        Assert.Equal(long.MaxValue, _pit.NextDeadline);

        Out(0x40, 50);
        Out(0x40, 0);
        AdvanceToTick(100_050);
        _pit.Poll();
        Assert.Equal(2, _interrupts.RisingEdges(0));
    }

    [Fact]
    public void ReprogrammingDoesNotLoseAnEdgeThatWasAlreadyDue()
    {
        Out(0x43, 0x38);
        Out(0x40, 10);
        Out(0x40, 0);
        AdvanceToTick(20);
        Out(0x43, 0x38); // no poll in between
        Assert.Equal(1, _interrupts.RisingEdges(0));
    }

    [Fact]
    public void CounterLatchFreezesTheValueUntilRead()
    {
        Out(0x43, 0x34);
        Out(0x40, 1000 & 0xFF);
        Out(0x40, 1000 >> 8);
        AdvanceToTick(100);
        Out(0x43, 0x00); // latch counter 0
        AdvanceToTick(300);
        Assert.Equal(900, ReadCount(0));
        Assert.Equal(700, ReadCount(0));

        // A second latch before the first is read is ignored.
        Out(0x43, 0x00);
        AdvanceToTick(400);
        Out(0x43, 0x00);
        Assert.Equal(700, ReadCount(0));
    }

    [Fact]
    public void ReadBackLatchesStatusAndCount()
    {
        Out(0x43, 0x34);
        Assert.Equal(0x80 | 0x40 | 0x30 | 0x04, ReadBackStatus(0)); // OUT high, null count until a count is written
        Out(0x40, 1000 & 0xFF);
        Out(0x40, 1000 >> 8);
        AdvanceToTick(10);
        Assert.Equal(0x80 | 0x30 | 0x04, ReadBackStatus(0)); // OUT high, mode 2, lo/hi, binary

        Out(0x43, 0xC2); // latch count and status of counter 0
        AdvanceToTick(50);
        Assert.Equal(0xB4, In(0x40));
        Assert.Equal(990, ReadCount(0));
    }

    [Fact]
    public void SquareWaveHalvesOutAndCountsByTwo()
    {
        Out(0x61, 0x01);
        Out(0x43, 0xB6); // counter 2, lo/hi, mode 3 (what the PC speaker uses)
        Out(0x42, 100);
        Out(0x42, 0);
        AdvanceToTick(10);
        Assert.Equal(80, ReadCount(2));
        AdvanceToTick(49);
        Assert.Equal(0x20, In(0x61) & 0x20);
        AdvanceToTick(50);
        Assert.Equal(0, In(0x61) & 0x20);
        AdvanceToTick(99);
        Assert.Equal(0, In(0x61) & 0x20);
        AdvanceToTick(100);
        Assert.Equal(0x20, In(0x61) & 0x20);
    }

    [Fact]
    public void BcdCountingReadsBackInBcd()
    {
        Out(0x61, 0x01);
        Out(0x43, 0xB1); // counter 2, lo/hi, mode 0, BCD
        Out(0x42, 0x00);
        Out(0x42, 0x10); // 1000
        AdvanceToTick(1);
        Assert.Equal(0x0999, ReadCount(2));
        AdvanceToTick(999);
        Assert.Equal(0, In(0x61) & 0x20);
        AdvanceToTick(1000);
        Assert.Equal(0x20, In(0x61) & 0x20);
    }

    [Fact]
    public void LsbOnlyAccessMode()
    {
        Out(0x61, 0x01);
        Out(0x43, 0x90); // counter 2, LSB only, mode 0
        Out(0x42, 50);
        AdvanceToTick(20);
        Assert.Equal(30, In(0x42));
        Assert.Equal(30, In(0x42));
    }

    [Fact]
    public void Port61KeepsItsControlBitsAndTogglesRefresh()
    {
        Out(0x61, 0xFF);
        Assert.Equal(0x0F, In(0x61) & 0xDF);
        _clock.Advance(15_085);
        Assert.Equal(0x10, In(0x61) & 0x10);
        _clock.Advance(15_085);
        Assert.Equal(0x00, In(0x61) & 0x10);
    }

    [Fact]
    public void ControlPortReadsZeroAndCounterZeroMeansFullRange()
    {
        Assert.Equal(0, In(0x43));
        Out(0x43, 0x30);
        Out(0x40, 0);
        Out(0x40, 0);
        AdvanceToTick(1);
        Assert.Equal(0xFFFF, ReadCount(0));
        AdvanceToTick(65_536);
        _pit.Poll();
        Assert.Equal(1, _interrupts.RisingEdges(0));
    }

    private static long TickAt(long ns) => (long)((System.Numerics.BigInteger)ns * 1_193_182 / 1_000_000_000);

    private static long NanosecondsForTick(long tick) =>
        (long)(((System.Numerics.BigInteger)tick * 1_000_000_000 + 1_193_181) / 1_193_182);

    private void AdvanceToTick(long tick)
    {
        long target = NanosecondsForTick(tick);
        Assert.True(target >= _clock.Nanoseconds, "time cannot go back");
        _clock.Advance(target - _clock.Nanoseconds);
        Assert.Equal(tick, TickAt(_clock.Nanoseconds));
    }

    private int ReadCount(int channel)
    {
        int lsb = In((ushort)(0x40 + channel));
        int msb = In((ushort)(0x40 + channel));
        return lsb | (msb << 8);
    }

    private int ReadBackStatus(int channel)
    {
        Out(0x43, (byte)(0xE0 | (2 << channel)));
        return In((ushort)(0x40 + channel));
    }

    private void Out(ushort port, int value) => Assert.True(_ports.Write(port, [(byte)value]));

    private byte In(ushort port)
    {
        Span<byte> data = stackalloc byte[1];
        Assert.True(_ports.Read(port, data));
        return data[0];
    }
}
