using SharpVisor.Devices.Legacy;
using SharpVisor.Machine;

namespace SharpVisor.Devices.Tests.Legacy;

public sealed class LegacyPlatformTests
{
    private readonly PortIoBus _bus = new();
    private readonly RecordingInterruptController _interrupts = new();
    private readonly MachineControl _control = new();
    private readonly MemoryStream _serialOutput = new();
    private readonly LegacyPlatform _platform;

    public LegacyPlatformTests()
    {
        _platform = LegacyPlatform.Register(_bus, _interrupts, _control, _serialOutput);
    }

    private byte In(ushort port)
    {
        byte[] data = new byte[1];
        Assert.True(_bus.Read(port, data), $"no device at port 0x{port:x}");
        return data[0];
    }

    [Fact]
    public void Com1IsAt3F8WithIrq4()
    {
        Assert.True(_bus.Write(0x3F8, [(byte)'h']));
        Assert.True(_bus.Write(0x3F8, [(byte)'i']));
        Assert.Equal("hi"u8.ToArray(), _serialOutput.ToArray());
        Assert.Equal(Serial16550.LsrTransmitterHoldingEmpty | Serial16550.LsrTransmitterEmpty, In(0x3FD));

        _bus.Write(0x3F9, [Serial16550.IerTransmitterEmpty]);
        Assert.True(_interrupts.Level(4));
        Assert.Same(_platform.Serial, _bus.Entries.Single(e => e.Base == 0x3F8 && e.Size == 8).Device);
    }

    [Fact]
    public void KeyboardControllerAnswersOnPorts60And64()
    {
        _bus.Write(0x64, [I8042Controller.CommandSelfTest]);
        Assert.NotEqual(0, In(0x64) & I8042Controller.StatusOutputFull);
        Assert.Equal(I8042Controller.SelfTestPassed, In(0x60));

        _bus.Write(0x64, [I8042Controller.CommandPulseResetLine]);
        Assert.Equal(MachineStopReason.Reset, _control.StopReason);
    }

    [Fact]
    public void DebugExitIsAtF4()
    {
        _bus.Write(0xF4, [0x21, 0, 0, 0]);
        Assert.Equal(MachineStopReason.DebugExit, _control.StopReason);
        Assert.Equal(67, _control.ExitStatus);
    }

    [Fact]
    public void PostCodeWritesAreClaimedAndRemembered()
    {
        Assert.Null(_platform.PostCode.LastCode);
        Assert.True(_bus.Write(0x80, [0x42]));
        Assert.Equal((byte)0x42, _platform.PostCode.LastCode);
    }

    [Fact]
    public void PortsTheAcceleratorOwnsAreLeftFree()
    {
        foreach (ushort port in new ushort[] { 0x20, 0x21, 0x40, 0x43, 0x61, 0xA0, 0x70 })
        {
            Assert.False(_bus.Read(port, new byte[1]), $"port 0x{port:x} should stay unassigned");
        }
    }
}
