using SharpVisor.Machine;

namespace SharpVisor.Machine.Tests;

public sealed class IoBusTests
{
    private sealed class RecordingDevice : IPortIoDevice, IMmioDevice
    {
        public List<(ulong Offset, byte[] Data)> Writes { get; } = new();

        public void Read(ushort offset, Span<byte> data) => data.Fill((byte)offset);

        public void Write(ushort offset, ReadOnlySpan<byte> data) => Writes.Add((offset, data.ToArray()));

        public void Read(ulong offset, Span<byte> data) => data.Fill((byte)(offset + 0x40));

        public void Write(ulong offset, ReadOnlySpan<byte> data) => Writes.Add((offset, data.ToArray()));
    }

    [Fact]
    public void UnassignedPortsReadAllOnesAndIgnoreWrites()
    {
        var bus = new PortIoBus();
        Span<byte> data = stackalloc byte[4];
        Assert.False(bus.Read(0x1234, data));
        Assert.Equal(new byte[] { 0xFF, 0xFF, 0xFF, 0xFF }, data.ToArray());
        Assert.False(bus.Write(0x1234, data));
    }

    [Fact]
    public void DevicesSeeOffsetsFromTheirBase()
    {
        var bus = new PortIoBus();
        var device = new RecordingDevice();
        bus.Register(0x3F8, 8, device, "uart");
        Span<byte> data = stackalloc byte[1];
        Assert.True(bus.Read(0x3FD, data));
        Assert.Equal(5, data[0]);
        Assert.True(bus.Write(0x3F8, [0x41]));
        Assert.Equal(0UL, device.Writes[0].Offset);
        Assert.Equal(new byte[] { 0x41 }, device.Writes[0].Data);
    }

    [Fact]
    public void AnAccessThatRunsPastTheDeviceIsUnassigned()
    {
        var bus = new PortIoBus();
        bus.Register(0x3F8, 8, new RecordingDevice(), "uart");
        Span<byte> data = stackalloc byte[4];
        Assert.False(bus.Read(0x3FE, data));
        Assert.Equal(0xFF, data[3]);
    }

    [Fact]
    public void OverlappingRegistrationsAreRefused()
    {
        var bus = new PortIoBus();
        bus.Register(0x60, 1, new RecordingDevice(), "i8042-data");
        var e = Assert.Throws<InvalidOperationException>(() => bus.Register(0x5F, 2, new RecordingDevice(), "other"));
        Assert.Contains("i8042-data", e.Message);
    }

    [Fact]
    public void ManyDevicesAreFoundByBinarySearch()
    {
        var bus = new MmioBus();
        var devices = new List<RecordingDevice>();
        for (int i = 0; i < 50; i++)
        {
            var device = new RecordingDevice();
            devices.Add(device);
            bus.Register(0xD000_0000UL + (ulong)i * 0x1000, 0x100, device, $"dev{i}");
        }

        for (int i = 0; i < 50; i++)
        {
            Assert.True(bus.Write(0xD000_0000UL + (ulong)i * 0x1000 + 0x10, [1, 2]));
            Assert.Single(devices[i].Writes);
            Assert.Equal(0x10UL, devices[i].Writes[0].Offset);
        }

        Span<byte> data = stackalloc byte[2];
        Assert.False(bus.Read(0xD000_0000UL + 0x200, data)); // the gap between two devices
        Assert.Equal(0xFF, data[0]);
    }

    [Fact]
    public void RangesThatWrapAreRefused()
    {
        var bus = new MmioBus();
        Assert.Throws<ArgumentOutOfRangeException>(() => bus.Register(ulong.MaxValue - 10, 0x100, new RecordingDevice(), "wrap"));
        Assert.Throws<ArgumentOutOfRangeException>(() => bus.Register(0x1000, 0, new RecordingDevice(), "empty"));
    }
}
