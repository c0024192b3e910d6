using SharpVisor.Devices.Legacy;
using SharpVisor.Machine;

namespace SharpVisor.Devices.Tests.Legacy;

public sealed class DebugExitDeviceTests
{
    [Theory]
    [InlineData(0x00, 1)]
    [InlineData(0x01, 3)]
    [InlineData(0x21, 67)]
    [InlineData(0xFF, 511)]
    public void ByteWriteExitsWithShiftedStatus(byte value, int status)
    {
        var control = new MachineControl();
        new DebugExitDevice(control).Write(0, [value]);

        Assert.Equal(MachineStopReason.DebugExit, control.StopReason);
        Assert.Equal(status, control.ExitStatus);
    }

    [Theory]
    [InlineData(new byte[] { 0x21, 0x7F })]
    [InlineData(new byte[] { 0x21, 0x01, 0x02, 0x03 })]
    public void WiderWritesUseTheLowByte(byte[] data)
    {
        var control = new MachineControl();
        new DebugExitDevice(control).Write(0, data);

        Assert.Equal(67, control.ExitStatus);
    }

    [Fact]
    public void WritesPastTheFirstPortAndReadsDoNothing()
    {
        var control = new MachineControl();
        var device = new DebugExitDevice(control);
        device.Write(1, [0x05]);
        byte[] data = new byte[4];
        device.Read(0, data);

        Assert.False(control.IsStopRequested);
        Assert.Equal([0xFF, 0xFF, 0xFF, 0xFF], data);
    }
}
