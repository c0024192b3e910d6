using System.Numerics;
using SharpVisor.Boot.Acpi;
using SharpVisor.Machine;

namespace SharpVisor.Boot.Tests.Acpi;

/// <summary>
/// Issue 17, item 4: PM_TMR at long uptimes on a virtual clock. It used to multiply nanoseconds
/// by 3,579,545 in 64 bits and jump after ~2,577 s; now it must equal the exact count modulo
/// 2^32 at any uptime and advance by 3,579.545 ticks per millisecond across the old overflow.
/// </summary>
public sealed class AcpiPmTimerUptimeTests
{
    public static TheoryData<double> UptimeSeconds => new()
    {
        2_576.9, 2_577.7, 3_600, 86_400, 7 * 86_400.0, 30 * 86_400.0, 91 * 86_400.0, 365 * 86_400.0,
    };

    [Theory]
    [MemberData(nameof(UptimeSeconds))]
    public void PmTimerIsExactAndSteadyAtLongUptimes(double seconds)
    {
        var clock = new ManualClock();
        var pm = new AcpiPmDevice(new MachineControl(), new InterruptLine(new RecordingInterruptController(), AcpiPmDevice.DefaultSciIrq), clock);
        var ports = new PortIoBus();
        ports.Register(AcpiPmDevice.DefaultBasePort, AcpiPmDevice.PortCount, pm, "acpi-pm");

        clock.Advance(TimeSpan.FromSeconds(seconds));
        uint before = ReadTimer(ports);
        clock.Advance(TimeSpan.FromMilliseconds(1));
        uint after = ReadTimer(ports);

        long nanoseconds = (long)(seconds * 1e9);
        Assert.Equal(Expected(nanoseconds), before);
        Assert.Equal(Expected(nanoseconds + 1_000_000), after);
        Assert.InRange(unchecked(after - before), 3_579u, 3_580u);
    }

    [Fact]
    public void PmTimerNeverJumpsAcrossTheOld64BitOverflow()
    {
        var clock = new ManualClock();
        var pm = new AcpiPmDevice(new MachineControl(), new InterruptLine(new RecordingInterruptController(), AcpiPmDevice.DefaultSciIrq), clock);
        clock.Advance(TimeSpan.FromSeconds(2_570));
        uint previous = pm.TimerValue;
        for (int step = 0; step < 20_000; step++)
        {
            clock.Advance(TimeSpan.FromMilliseconds(1));
            uint now = pm.TimerValue;
            Assert.InRange(unchecked(now - previous), 3_579u, 3_580u);
            previous = now;
        }
    }

    private static uint Expected(long nanoseconds) =>
        (uint)(BigInteger.Multiply(nanoseconds, AcpiPmDevice.TimerFrequency) / 1_000_000_000 % (BigInteger.One << 32));

    private static uint ReadTimer(PortIoBus ports)
    {
        Span<byte> data = stackalloc byte[4];
        ports.Read(AcpiPmDevice.DefaultBasePort + AcpiPmDevice.PmTimerOffset, data);
        return BitConverter.ToUInt32(data);
    }
}
