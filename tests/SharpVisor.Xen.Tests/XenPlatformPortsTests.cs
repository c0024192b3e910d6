namespace SharpVisor.Xen.Tests;

/// <summary>The unplug protocol as Linux's check_platform_magic and xen_unplug_emulated_devices drive it.</summary>
public sealed class XenPlatformPortsTests
{
    [Fact]
    public void LinuxHandshakeThenUnplugIsRecordedAndLoggedOnce()
    {
        var log = new List<string>();
        var ports = new XenPlatformPorts(log.Add);
        var masks = new List<int>();
        ports.Unplugged += masks.Add;

        Assert.Equal(XenPlatformPorts.Magic, Read16(ports, 0));
        var version = new byte[1];
        ports.Read(2, version);
        Assert.Equal(1, version[0]);
        ports.Write(2, BitConverter.GetBytes((ushort)3));               // XEN_IOPORT_LINUX_PRODNUM
        ports.Write(0, BitConverter.GetBytes(0x0002_0600u));            // XEN_IOPORT_LINUX_DRVVER
        Assert.Equal(XenPlatformPorts.Magic, Read16(ports, 0));         // not blacklisted
        Assert.Equal(-1, ports.UnplugMask);

        ports.Write(0, BitConverter.GetBytes((ushort)(XenPlatformPorts.UnplugIdeDisks | XenPlatformPorts.UnplugNics)));
        ports.Write(0, BitConverter.GetBytes((ushort)7));

        Assert.Equal((3, 0x0002_0600L, 7), (ports.ProductNumber, ports.DriverVersion, ports.UnplugMask));
        Assert.Equal([3, 7], masks);
        Assert.Equal("xen platform: the guest unplugged emulated devices, mask 0x3", Assert.Single(log));
    }

    [Theory]
    [InlineData(0, 1)]
    [InlineData(1, 1)]
    [InlineData(1, 2)]
    [InlineData(2, 4)]
    [InlineData(3, 1)]
    public void OtherAccessesReadAllOnesAndWritesChangeNothing(ushort offset, int size)
    {
        var ports = new XenPlatformPorts();
        var data = new byte[size];
        ports.Read(offset, data);
        Assert.All(data, b => Assert.Equal(0xFF, b));
        ports.Write(offset, new byte[size]);
        Assert.Equal((-1, -1, -1L), (ports.UnplugMask, ports.ProductNumber, ports.DriverVersion));
    }

    private static ushort Read16(XenPlatformPorts ports, ushort offset)
    {
        var data = new byte[2];
        ports.Read(offset, data);
        return BitConverter.ToUInt16(data);
    }
}
