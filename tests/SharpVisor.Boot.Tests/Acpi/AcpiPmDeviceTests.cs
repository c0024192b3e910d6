using SharpVisor.Boot.Acpi;
using SharpVisor.Machine;

namespace SharpVisor.Boot.Tests.Acpi;

public sealed class AcpiPmDeviceTests
{
    private readonly MachineControl _control = new();
    private readonly RecordingInterruptController _interrupts = new();
    private readonly AcpiPmDevice _pm;
    private readonly PortIoBus _ports = new();

    public AcpiPmDeviceTests()
    {
        _pm = new AcpiPmDevice(_control, new InterruptLine(_interrupts, AcpiPmDevice.DefaultSciIrq));
        _ports.Register(AcpiPmDevice.DefaultBasePort, AcpiPmDevice.PortCount, _pm, "acpi-pm");
    }

    private ushort In16(int offset)
    {
        Span<byte> data = stackalloc byte[2];
        _ports.Read((ushort)(AcpiPmDevice.DefaultBasePort + offset), data);
        return BitConverter.ToUInt16(data);
    }

    private uint In32(int offset)
    {
        Span<byte> data = stackalloc byte[4];
        _ports.Read((ushort)(AcpiPmDevice.DefaultBasePort + offset), data);
        return BitConverter.ToUInt32(data);
    }

    private void Out16(int offset, ushort value) => _ports.Write((ushort)(AcpiPmDevice.DefaultBasePort + offset), BitConverter.GetBytes(value));

    [Fact]
    public void LinuxPoweroffWritesS5AndPowersTheMachineOff()
    {
        Assert.Equal(AcpiPmDevice.SciEnable, In16(AcpiPmDevice.Pm1ControlOffset));

        // acpi_hw_legacy_sleep: write SLP_TYP first, then SLP_TYP | SLP_EN.
        ushort typ = AcpiPmDevice.S5SleepType << 10;
        Out16(AcpiPmDevice.Pm1ControlOffset, (ushort)(AcpiPmDevice.SciEnable | typ));
        Assert.False(_control.IsStopRequested);
        Out16(AcpiPmDevice.Pm1ControlOffset, (ushort)(AcpiPmDevice.SciEnable | typ | AcpiPmDevice.SleepEnable));
        Assert.Equal(MachineStopReason.PowerOff, _control.StopReason);
        Assert.Equal(0, _control.ExitStatus);
    }

    [Fact]
    public void S3CallsTheSuspendHandlerAndWakeSetsWakeStatusUntilWrittenOne()
    {
        int suspends = 0;
        var log = new List<string>();
        _pm.Log = new GuestLog(log.Add);
        Out16(AcpiPmDevice.Pm1ControlOffset, (AcpiPmDevice.S3SleepType << 10) | AcpiPmDevice.SleepEnable);
        Assert.Single(log); // no handler: refused as unsupported
        Assert.Equal(0, suspends);

        _pm.SuspendToRam = () => suspends++;
        Out16(AcpiPmDevice.Pm1ControlOffset, (AcpiPmDevice.S3SleepType << 10) | AcpiPmDevice.SleepEnable);
        Assert.Equal(1, suspends);
        Assert.False(_control.IsStopRequested);
        Assert.Equal(0, In16(AcpiPmDevice.Pm1EventOffset) & AcpiPmDevice.WakeStatus);

        _pm.Wake();
        Assert.Equal(AcpiPmDevice.WakeStatus, In16(AcpiPmDevice.Pm1EventOffset) & AcpiPmDevice.WakeStatus);
        Assert.False(_pm.SciAsserted); // waking is not an SCI event
        Out16(AcpiPmDevice.Pm1EventOffset, AcpiPmDevice.WakeStatus);
        Assert.Equal(0, In16(AcpiPmDevice.Pm1EventOffset) & AcpiPmDevice.WakeStatus);
    }

    [Fact]
    public void OtherSleepStatesAreIgnoredAndSleepEnableReadsZero()
    {
        var log = new List<string>();
        _pm.Log = new GuestLog(log.Add);
        Out16(AcpiPmDevice.Pm1ControlOffset, (3 << 10) | AcpiPmDevice.SleepEnable);
        Assert.False(_control.IsStopRequested);
        Assert.Single(log);
        Assert.Equal((3 << 10) | AcpiPmDevice.SciEnable, In16(AcpiPmDevice.Pm1ControlOffset));
    }

    [Fact]
    public void ResetRegisterResetsTheMachine()
    {
        _ports.Write(AcpiPmDevice.DefaultBasePort + AcpiPmDevice.ResetOffset, [0x00]);
        Assert.False(_control.IsStopRequested);
        _ports.Write(AcpiPmDevice.DefaultBasePort + AcpiPmDevice.ResetOffset, [AcpiPmDevice.ResetValue]);
        Assert.Equal(MachineStopReason.Reset, _control.StopReason);
    }

    [Fact]
    public void PowerButtonRaisesSciOnlyWhenEnabledAndClearsOnWriteOne()
    {
        _pm.PressPowerButton();
        Assert.Equal(AcpiPmDevice.PowerButtonStatus, In16(0) & AcpiPmDevice.PowerButtonStatus);
        Assert.False(_interrupts.Level(9));

        // The guest's ACPI driver enables the fixed power-button event.
        Out16(2, AcpiPmDevice.PowerButtonStatus);
        Assert.True(_interrupts.Level(9));
        Assert.True(_pm.SciAsserted);

        // Its handler acknowledges by writing one to the status bit: SCI drops.
        Out16(0, AcpiPmDevice.PowerButtonStatus);
        Assert.Equal(0, In16(0));
        Assert.False(_interrupts.Level(9));

        _pm.PressPowerButton();
        Assert.True(_interrupts.Level(9));
        Assert.Equal([(9u, true), (9u, false), (9u, true)], _interrupts.Changes);
    }

    [Fact]
    public void WritingZeroToStatusClearsNothing()
    {
        _pm.PressPowerButton();
        Out16(0, 0);
        Assert.Equal(AcpiPmDevice.PowerButtonStatus, In16(0));
    }

    [Fact]
    public void PmTimerCountsAt3579545Hz()
    {
        uint first = In32(AcpiPmDevice.PmTimerOffset);
        Thread.Sleep(50);
        uint second = In32(AcpiPmDevice.PmTimerOffset);
        uint elapsed = second - first;
        Assert.InRange(elapsed, 3_579_545u * 40 / 1000, 3_579_545u * 5); // at least 40 ms, bounded by a slow, loaded host
    }
}
